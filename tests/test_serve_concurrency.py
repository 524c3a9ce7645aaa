"""Deploys under load: clients load a page and its assets through the router while another thread
publishes, promotes and rolls back. No open page may ever get a 5xx, a 404 for one of its assets, or
an asset from another version. Bounded: 20 switches, a few thousand requests, 127.0.0.1 only.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

import httpx

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.serve import create_app

from .helpers import SETTINGS
from .test_serve import NAV, make_build, publish, serving

SWITCHES = 20
CLIENTS = 4
MAX_REQUESTS = 4000
PAUSE = 0.1  # between switches, so every switch lands among in-flight page loads


def files_for(n: int) -> dict[str, str]:
    """Build n: the same paths in every build (index, /app.js, /data.json) plus one fingerprinted asset."""
    css = f"assets/style.{n:08x}a1b2c3d4.css"
    return {
        "index.html": f'<!doctype html><!-- build-{n} --><link rel="stylesheet" href="/{css}">'
                      f'<script src="/app.js"></script><script>fetch("/data.json")</script>',
        "app.js": f"console.log('build-{n}');" + "x" * (n * 37 % 500),
        "data.json": f'{{"build": {n}}}',
        css: f"/* build-{n} */ body {{ color: #{n:06x} }}",
    }


def test_switches_under_load_never_break_an_open_page(rig, tmp_path):
    store = rig.store
    build_of: dict[str, int] = {}  # version → build number, recorded before the version can go live

    def new_build(promote: bool) -> str:
        n = len(build_of)
        version = publish(store, make_build(tmp_path / f"b{n}", files_for(n)), promote=False)
        build_of[version] = n
        if promote:
            atomicsite.promote(version, store, settings=SETTINGS)
        return version

    known = [new_build(True), new_build(False), new_build(False)]
    app = create_app(store, settings=SETTINGS, pointer_ttl=0.02)
    done = threading.Event()
    failures: list[str] = []
    seen = Counter()
    requests = Counter()
    lock = threading.Lock()
    switches = 0

    def switcher():
        nonlocal switches
        try:
            step = 0
            while switches < SWITCHES:
                step += 1
                if step % 6 == 0:
                    known.append(new_build(True))
                    outcome_switched = True
                elif step % 3 == 0:
                    outcome_switched = atomicsite.rollback(store, settings=SETTINGS).switched
                else:
                    live = read_pointer(store, "live").version
                    target = next(v for v in reversed(known) if v != live) if step % 2 else known[0]
                    outcome_switched = atomicsite.promote(target, store, settings=SETTINGS).switched
                switches += bool(outcome_switched)
                time.sleep(PAUSE)
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(f"switcher: {exc!r}")
        finally:
            done.set()

    def page_loader(base: str):
        with httpx.Client(base_url=base, timeout=10) as client:  # one browser: keeps its cookie
            while not done.is_set():
                page = client.get("/", headers=NAV)
                version = page.headers.get("x-atomicsite-version")
                if page.status_code != 200 or version not in build_of:
                    failures.append(f"page: {page.status_code} from {version}: {page.text[:80]!r}")
                    continue
                expected = files_for(build_of[version])
                if page.text != expected["index.html"]:
                    failures.append(f"page of {version} has another version's body: {page.text[:80]!r}")
                assets = ["/" + re.search(r'href="/([^"]+)"', page.text).group(1), "/app.js", "/data.json"]
                for asset in assets:
                    r = client.get(asset)
                    got = r.headers.get("x-atomicsite-version")
                    if r.status_code != 200 or got != version or r.text != expected[asset[1:]]:
                        failures.append(f"{asset} for a page of {version}: {r.status_code} from {got}: {r.text[:60]!r}")
                with lock:
                    seen[version] += 1
                    requests["pinned"] += 1 + len(assets)
                    if sum(requests.values()) >= MAX_REQUESTS:
                        return

    def unpinned(base: str):
        """No cookies: always live; every body must belong to the version its header names."""
        with httpx.Client(base_url=base, timeout=10) as client:
            while not done.is_set():
                client.cookies.clear()
                for path in ("index.html", "data.json"):
                    r = client.get("/" + path)
                    version = r.headers.get("x-atomicsite-version")
                    if r.status_code != 200 or version not in build_of or r.text != files_for(build_of[version])[path]:
                        failures.append(f"unpinned /{path}: {r.status_code} from {version}: {r.text[:60]!r}")
                with lock:
                    requests["unpinned"] += 2
                    if sum(requests.values()) >= MAX_REQUESTS:
                        return

    with serving(app) as base:
        threads = [threading.Thread(target=page_loader, args=(base,)) for _ in range(CLIENTS - 1)]
        threads.append(threading.Thread(target=unpinned, args=(base,)))
        threads.append(threading.Thread(target=switcher))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a client or the switcher hung"

    assert not failures, f"{len(failures)} bad responses, e.g. {failures[:5]}"
    assert switches >= SWITCHES or sum(requests.values()) >= MAX_REQUESTS
    assert len(seen) >= 3, f"pages came from too few versions to prove anything: {dict(seen)}"
    assert sum(requests.values()) >= 300, f"too few requests to prove anything: {dict(requests)}"
