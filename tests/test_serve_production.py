"""The router as a service: `atomicsite serve` processes (granian, N workers) over real HTTP.

Freshness (issue 12 §3), health, metrics, several workers, three replicas on one target, and the
RSGI wire (ranges, streaming, early disconnects, files sent by granian). Timing assertions rest on
the router's promise, not on how fast this machine is: a request that *starts* more than
``pointer_ttl`` after a switch has returned must get the new version (the pointer it is answered
from was read after the switch), however slowly the machine runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import atomicsite
from atomicsite.channels import ChannelPointer
from atomicsite.errors import IntegrityError, StoreError
from atomicsite.layout import channel_key
from atomicsite.stores.local import LocalStore

from .helpers import SETTINGS, OpsStore
from .test_serve import free_port, make_build, publish, wait_for

ROOT = Path(__file__).resolve().parent.parent
NAV = {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "accept": "text/html"}


def site(tmp: Path, n: int) -> Path:
    """Build n: a page and a fingerprinted-looking asset whose bytes differ per build."""
    return make_build(tmp / f"b{n}", {
        "index.html": f"<h1>build {n}</h1><script src=/assets/app.js></script>",
        "assets/app.js": f"console.log({n})",
        "big.bin": bytes([n]) * (600 << 10),  # over the body-cache limit: streamed (or sent by granian)
    })


class Served:
    """A running ``atomicsite serve``: its base URL and everything it has printed so far."""

    def __init__(self, base: str, proc: subprocess.Popen):
        self.base, self.proc, self.lines = base, proc, []
        # drained all the time: a full pipe would block the router's access log, and the router
        self.reader = threading.Thread(target=lambda: self.lines.extend(
            line.decode(errors="replace") for line in proc.stdout), daemon=True)
        self.reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def atomicsite_serve(target: str, *args: str, env: dict | None = None, cwd: Path | None = None):
    """``atomicsite serve`` in a subprocess on a free port; yields a Served."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "atomicsite", "serve", "--target", target, "--port", str(port), *args],
        cwd=cwd or ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)})
    served = Served(f"http://127.0.0.1:{port}", proc)

    def up():
        try:
            return httpx.get(served.base + "/_atomicsite/healthz", timeout=2).status_code in (200, 503)
        except httpx.TransportError:
            assert proc.poll() is None, served.output
            return False

    try:
        wait_for(up, timeout=30, what="atomicsite serve to start")
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        served.reader.join(5)
        proc.stdout.close()


def version_of(r: httpx.Response) -> str:
    assert r.status_code == 200, (r.status_code, r.text)
    return r.headers["x-atomicsite-version"]


def assert_follows_switch(bases: list[str], old: str, new: str, switched: float, ttl: float,
                          headers: dict | None = None, slack: float = 15.0) -> None:
    """Every router answers ``new`` to each request started ``ttl`` after ``switched``, and only ``old``
    or ``new`` before; keep asking until each has answered ``new`` after that point."""
    done: set[str] = set()
    deadline = time.monotonic() + ttl + slack
    with httpx.Client(timeout=10) as c:
        while len(done) < len(bases):
            assert time.monotonic() < deadline, f"not every router served {new}: {sorted(set(bases) - done)}"
            for base in bases:
                sent = time.monotonic()
                got = version_of(c.get(base + "/", headers=headers or NAV))
                if sent > switched + ttl:
                    assert got == new, f"{base} served {got} {sent - switched:.2f}s after the switch (TTL {ttl}s)"
                    done.add(base)
                else:
                    assert got in (old, new)
            time.sleep(0.02)


# -- freshness: issue 12 §3 --------------------------------------------------------------------------

def test_idle_router_never_answers_from_a_pre_quiet_pointer(rig, tmp_path):
    """Reproduction from the issue: idle, publish twice, prune, request → it was a 502, then 200."""
    from atomicsite.serve import create_app

    from .test_serve import serving

    v1 = publish(rig.store, site(tmp_path, 1))
    ttl = 0.3
    app = create_app(rig.store, settings=SETTINGS, pointer_ttl=ttl, pointer_wait=60)  # a slow machine is no hang
    with serving(app) as base, httpx.Client() as c:
        assert version_of(c.get(base + "/", headers=NAV)) == v1
        time.sleep(3 * ttl)  # quiet: nobody asks, nothing refreshes
        publish(rig.store, site(tmp_path, 2))
        v3 = publish(rig.store, site(tmp_path, 3))
        atomicsite.prune(rig.store, keep=1, settings=SETTINGS, force=True)
        assert v1 not in {v.version for v in atomicsite.versions(rig.store, settings=SETTINGS)}
        r = c.get(base + "/", headers=NAV)  # the very first request after the quiet period
        assert version_of(r) == v3 and r.text == "<h1>build 3</h1><script src=/assets/app.js></script>"
        assert r.headers["set-cookie"].startswith(f"atomicsite_version={v3}")


def test_a_pruned_live_version_forces_a_pointer_read_within_the_ttl(tmp_path):
    """Even inside a long TTL: a held pointer whose version was pruned is re-read, not answered 502."""
    from atomicsite.serve import create_app

    from .test_serve import serving

    store = LocalStore(tmp_path / "site")
    v1 = publish(store, site(tmp_path, 1))
    with serving(create_app(store, settings=SETTINGS, pointer_ttl=600)) as base, httpx.Client() as c:
        assert version_of(c.get(base + "/")) == v1  # v1's pointer and manifest now held in memory
        publish(store, site(tmp_path, 2))
        v3 = publish(store, site(tmp_path, 3))
        atomicsite.prune(store, keep=1, settings=SETTINGS, force=True)
        time.sleep(0.25)
        r = c.get(base + "/assets/app.js")  # v1's object is gone: the pointer is read again
        assert version_of(r) == v3 and r.text == "console.log(3)"
        assert version_of(c.get(base + "/big.bin")) == v3


def test_a_switch_reaches_a_busy_router_within_the_ttl(rig, tmp_path):
    from atomicsite.serve import create_app

    from .test_serve import serving

    v1 = publish(rig.store, site(tmp_path, 1))
    ttl = 0.5
    with serving(create_app(rig.store, settings=SETTINGS, pointer_ttl=ttl, pointer_wait=60)) as base:
        stop = threading.Event()

        def busy():  # keeps the pointer warm: the background refresh path, not the idle one
            with httpx.Client() as c:
                while not stop.is_set():
                    c.get(base + "/robots.txt")

        load = threading.Thread(target=busy, daemon=True)
        load.start()
        try:
            time.sleep(ttl)
            v2 = publish(rig.store, site(tmp_path, 2))
            switched = time.monotonic()
            assert_follows_switch([base], v1, v2, switched, ttl)
        finally:
            stop.set()
            load.join(10)


# -- corrupt pointers: issue 12 §4 -----------------------------------------------------------------

BAD_POINTERS = {
    "previous is a list": {"previous": ["x"]},
    "history entry version is a list": {"history": [{"version": ["x"], "previous": None, "action": "publish",
                                                     "at": "t", "by": "b"}]},
    "history is a string": {"history": "oops"},
    "pinned is a string": {"pinned": "no"},
}


def corrupted(store, version: str, change: dict) -> bytes:
    raw = json.loads(store.get(channel_key("live")).data)
    assert raw["version"] == version
    raw.update(change)
    return json.dumps(raw).encode()


@pytest.mark.parametrize("change", BAD_POINTERS.values(), ids=BAD_POINTERS.keys())
def test_wrongly_typed_pointer_fields_are_a_corrupt_pointer(tmp_path, change):
    store = LocalStore(tmp_path / "site")
    version = publish(store, site(tmp_path, 1))
    with pytest.raises(IntegrityError, match="corrupt channel pointer"):
        ChannelPointer.from_json(corrupted(store, version, change), where="x")


@pytest.mark.parametrize("change", BAD_POINTERS.values(), ids=BAD_POINTERS.keys())
def test_router_with_a_corrupt_pointer_answers_502_or_the_last_good_one(tmp_path, change):
    from atomicsite.serve import create_app

    from .test_serve import serving

    store = LocalStore(tmp_path / "site")
    version = publish(store, site(tmp_path, 1))
    bad = corrupted(store, version, change)
    with serving(create_app(store, settings=SETTINGS, pointer_ttl=0.05)) as base, httpx.Client() as c:
        assert version_of(c.get(base + "/")) == version
        assert c.get(base + "/_atomicsite/healthz").status_code == 200
        (store.root / channel_key("live")).write_bytes(bad)
        time.sleep(0.1)
        r = c.get(base + "/")  # the re-read fails: the last good pointer is kept
        assert version_of(r) == version
        h = c.get(base + "/_atomicsite/healthz")
        assert h.status_code == 503 and "corrupt" in h.text and version in h.text
        assert h.headers["cache-control"] == "no-store" and "Traceback" not in h.text
    # a router that never saw a good pointer: 502, one line, no traceback
    with serving(create_app(store, settings=SETTINGS, pointer_ttl=0.05)) as base, httpx.Client() as c:
        r = c.get(base + "/")
        assert r.status_code == 502 and "Traceback" not in r.text and len(r.text.splitlines()) == 1
        h = c.get(base + "/_atomicsite/healthz")
        assert h.status_code == 503 and "corrupt" in h.text


# -- health --------------------------------------------------------------------------------------

def test_healthz_follows_the_store(tmp_path):
    from atomicsite.serve import create_app

    from .test_serve import serving

    inner = LocalStore(tmp_path / "site")
    failing = threading.Event()

    def flaky(op, args):
        if failing.is_set() and op == "get" and args[0] == channel_key("live"):
            raise StoreError("injected: the store is unreachable")

    app = create_app(OpsStore(inner, before=flaky), settings=SETTINGS, pointer_ttl=0.1)
    with serving(app) as base, httpx.Client() as c:
        h = c.get(base + "/_atomicsite/healthz")
        assert h.status_code == 200 and "nothing published" in h.text  # the replica is fine; the site is empty
        version = publish(inner, site(tmp_path, 1))
        time.sleep(0.15)
        h = c.get(base + "/_atomicsite/healthz")
        assert h.status_code == 200 and version in h.text and h.text.startswith("ok")
        failing.set()
        time.sleep(0.15)
        h = c.get(base + "/_atomicsite/healthz")
        assert h.status_code == 503 and "did not answer" in h.text and "unreachable" not in h.text  # no detail
        assert version_of(c.get(base + "/")) == version  # visitors still get the last good pointer
        failing.clear()
        wait_for(lambda: c.get(base + "/_atomicsite/healthz").status_code == 200, what="health to recover")
        assert c.head(base + "/_atomicsite/healthz").status_code == 200


def test_healthz_reports_a_read_that_hangs(tmp_path):
    from atomicsite.serve import create_app
    from atomicsite.serve.health import max_age

    from .test_serve import serving

    inner = LocalStore(tmp_path / "site")
    version = publish(inner, site(tmp_path, 1))
    hang = threading.Event()
    release = threading.Event()

    def slow(op, args):
        if hang.is_set() and op == "get" and args[0] == channel_key("live"):
            release.wait(30)

    ttl = 0.1
    app = create_app(OpsStore(inner, before=slow), settings=SETTINGS, pointer_ttl=ttl, pointer_wait=0.2)
    try:
        with serving(app) as base, httpx.Client(timeout=10) as c:
            assert c.get(base + "/_atomicsite/healthz").status_code == 200
            hang.set()
            time.sleep(max_age(ttl) + 0.2)
            started = time.monotonic()
            assert version_of(c.get(base + "/")) == version  # stale but served, after at most max_wait
            assert time.monotonic() - started < 5
            h = c.get(base + "/_atomicsite/healthz")
            assert h.status_code == 503 and "last read" in h.text
            release.set()
            wait_for(lambda: c.get(base + "/_atomicsite/healthz").status_code == 200, what="health to recover")
    finally:
        release.set()


# -- metrics ---------------------------------------------------------------------------------------

def test_metrics_in_process(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest

    from atomicsite.serve import create_app
    from atomicsite.serve.metrics import RouterMetrics

    from .test_serve import serving

    store = LocalStore(tmp_path / "site")
    version = publish(store, site(tmp_path, 1))
    app = create_app(store, settings=SETTINGS, pointer_ttl=0.05)
    registry = CollectorRegistry()
    app.observe(RouterMetrics(registry))
    with serving(app) as base, httpx.Client() as c:
        for _ in range(3):
            c.get(base + "/assets/app.js")
        c.get(base + "/missing")
        text = generate_latest(registry).decode()
        assert 'atomicsite_requests_total{channel="live",status="200"} 3.0' in text
        assert 'atomicsite_requests_total{channel="live",status="404"} 1.0' in text
        assert 'atomicsite_request_duration_seconds_count{channel="live"} 4.0' in text
        assert f'atomicsite_channel_version{{channel="live",version="{version}"}} 1.0' in text
        assert "atomicsite_body_cache_hits_total 2.0" in text and "atomicsite_body_cache_misses_total 1.0" in text
        assert 'atomicsite_store_request_duration_seconds_count{op="get"}' in text
        v2 = publish(store, site(tmp_path, 2))
        wait_for(lambda: version_of(c.get(base + "/")) == v2, what="v2")
    text = generate_latest(registry).decode()
    assert f'atomicsite_channel_version{{channel="live",version="{version}"}} 0.0' in text
    assert f'atomicsite_channel_version{{channel="live",version="{v2}"}} 1.0' in text


def test_serve_with_workers_and_metrics_port(tmp_path):
    store = LocalStore(tmp_path / "site")
    version = publish(store, site(tmp_path, 1))
    metrics_port = free_port()
    env = {"ATOMICSITE_WORKERS": "2", "ATOMICSITE_METRICS_PORT": str(metrics_port)}  # as the image sets them
    with atomicsite_serve(str(store.root), "--pointer-ttl", "0.2", env=env) as served:
        base = served.base
        wait_for(lambda: served.output.count("Started worker-") >= 2, what="two workers")
        assert "(2 workers)" in served.output
        with httpx.Client(timeout=10) as c:  # new connections, so both workers are likely to answer
            for _ in range(40):
                assert version_of(httpx.get(base + "/assets/app.js", timeout=10)) == version
            for _ in range(5):
                assert c.get(base + "/nope").status_code == 404
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        assert samples['atomicsite_requests_total{channel="live",status="200"}'] >= 40  # + health probes
        assert samples['atomicsite_requests_total{channel="live",status="404"}'] == 5
        assert samples[f'atomicsite_channel_version{{channel="live",version="{version}"}}'] == 1
        assert 0 <= samples['atomicsite_pointer_age_seconds{channel="live"}'] < 30
        assert samples["atomicsite_body_cache_misses_total"] >= 1
        assert any(k.startswith('atomicsite_store_request_duration_seconds_count{op="get"}') for k in samples)
        # every worker follows the pointer: after the TTL, no new connection gets the old version
        v2 = publish(store, site(tmp_path, 2))
        time.sleep(0.2)  # the TTL: every request from now on starts after it
        for _ in range(40):
            assert version_of(httpx.get(base + "/", headers=NAV, timeout=10)) == v2


# -- scaled out: three replicas on one target -------------------------------------------------------

def test_three_replicas_follow_a_switch_and_keep_a_pinned_client(rig, tmp_path):
    ttl = 0.5
    v1 = publish(rig.store, site(tmp_path, 1))
    # a loaded machine may take long to read, but never long enough to count as a hanging store
    (tmp_path / "atomicsite.toml").write_text('[serve]\npointer_wait = "60s"\n')
    with contextlib.ExitStack() as stack:
        bases = [stack.enter_context(atomicsite_serve(rig.url, "--pointer-ttl", str(ttl), env=rig.env,
                                                      cwd=tmp_path)).base
                 for _ in range(3)]
        page = httpx.get(bases[0] + "/", headers=NAV)
        assert version_of(page) == v1
        pin = {"cookie": page.headers["set-cookie"].split(";")[0]}
        for base in bases:
            assert version_of(httpx.get(base + "/", headers=NAV)) == v1
        v2 = publish(rig.store, site(tmp_path, 2))
        switched = time.monotonic()
        assert_follows_switch(bases, v1, v2, switched, ttl)
        for base in bases:  # an open page of v1 keeps getting v1's asset, whichever replica answers
            r = httpx.get(base + "/assets/app.js", headers=pin)
            assert version_of(r) == v1 and r.text == "console.log(1)"
            assert httpx.get(base + "/assets/app.js").text == "console.log(2)"  # unpinned: live
            r = httpx.get(base + "/", headers={**NAV, **pin})  # a navigation moves the pin to live
            assert version_of(r) == v2 and r.headers["set-cookie"].startswith(f"atomicsite_version={v2}")


# -- the RSGI wire under `atomicsite serve` ------------------------------------------------------------

def test_serve_ranges_streams_and_disconnects(rig, tmp_path):
    """Range, 304, HEAD, a streamed large file (S3/GCS) or one sent by granian (local), and a client
    that goes away mid-body: the router carries on serving."""
    v1 = publish(rig.store, site(tmp_path, 1))
    big = bytes([1]) * (600 << 10)
    with atomicsite_serve(rig.url, env=rig.env) as served, httpx.Client(timeout=10) as c:
        base = served.base
        r = c.get(base + "/big.bin")
        assert version_of(r) == v1 and r.content == big and r.headers["content-length"] == str(len(big))
        r = c.get(base + "/big.bin", headers={"range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == big[10:20]
        assert r.headers["content-range"] == f"bytes 10-19/{len(big)}"
        assert c.get(base + "/big.bin", headers={"range": f"bytes={len(big)}-"}).status_code == 416
        etag = c.head(base + "/big.bin").headers["etag"]
        assert c.get(base + "/big.bin", headers={"if-none-match": etag}).status_code == 304
        for _ in range(3):  # leave mid-body, three times
            with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as s:
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                assert s.recv(1024).startswith(b"HTTP/1.1 200")
        assert c.get(base + "/big.bin").content == big
        assert c.post(base + "/").status_code == 405
    log = served.output
    assert f'"GET /big.bin" 206 10 live@{v1}' in log, log


def test_forwarded_proto_is_believed_only_from_trusted_peers(tmp_path):
    from atomicsite.serve import create_app
    from atomicsite.serve.server import ProxyHeaders

    from .test_serve import serving

    store = LocalStore(tmp_path / "site")
    publish(store, site(tmp_path, 1))
    https = {**NAV, "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
    for trusted, secure in (("127.0.0.0/8", True), ("10.0.0.0/8", False), ("*", True)):
        app = ProxyHeaders(create_app(store, settings=SETTINGS), trusted)
        with serving(app) as base:
            cookie = httpx.get(base + "/", headers=https).headers["set-cookie"]
            assert cookie.endswith("; Secure") is secure, (trusted, cookie)


@pytest.mark.parametrize("interface", ["rsgi", "asgi"])
def test_streaming_stops_reading_the_store_when_the_client_leaves(tmp_path, interface):
    """A streamed file (any store but a plain local one) is read chunk by chunk; a client that goes
    away mid-body stops the reads, over granian's RSGI interface as over its ASGI one."""
    import asyncio

    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    from atomicsite.serve import create_app
    from atomicsite.serve.rsgi import RSGIRouter

    inner = LocalStore(tmp_path / "site")
    payload = os.urandom(64 << 20)
    publish(inner, make_build(tmp_path / "b", {"index.html": "hi", "big.bin": payload}))
    chunks_read = []

    class CountingStore(OpsStore):  # not a plain local store: granian cannot send the file itself
        def open(self, key, start=0, end=None):
            for chunk in inner.open(key, start, end):
                chunks_read.append(len(chunk))
                yield chunk

    app = create_app(CountingStore(inner), settings=SETTINGS, body_cache_file_limit=0)
    port = free_port()
    server = Server(RSGIRouter(app) if interface == "rsgi" else app, address="127.0.0.1", port=port,
                    interface=Interfaces.RSGI if interface == "rsgi" else Interfaces.ASGI,
                    http=HTTPModes.http1, websockets=False, log_enabled=False)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(base + "/", timeout=2).status_code == 200 if thread.is_alive() else
                 pytest.fail("granian did not start"), timeout=20, what=f"granian ({interface})")
        assert httpx.get(base + "/big.bin", timeout=30).content == payload  # whole, when asked for
        chunks_read.clear()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(1.5)
        settled = len(chunks_read)
        time.sleep(0.5)
        assert len(chunks_read) == settled, "still reading the store for a client that left"
        # socket buffers on both sides let a good part go out before the server can tell; all of it
        # going out means nobody noticed
        assert sum(chunks_read) < len(payload), "read the whole file for a client that left"
    finally:
        loop.call_soon_threadsafe(server.stop)
        thread.join(10)
        loop.close()


def test_a_pointer_with_fields_this_version_does_not_know_still_reads(tmp_path):
    """Validation checks the fields it knows; fields a newer atomicsite adds are not corruption."""
    store = LocalStore(tmp_path / "site")
    version = publish(store, site(tmp_path, 1))
    raw = json.loads(store.get(channel_key("live")).data)
    raw["future"] = {"anything": 1}
    raw["history"][0]["future"] = ["x"]
    pointer = ChannelPointer.from_json(json.dumps(raw).encode(), where="x")
    assert pointer.version == version and pointer.history[0].version == version
