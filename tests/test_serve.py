"""The router (atomicsite.serve) over real HTTP: granian on a free 127.0.0.1 port, every store rig.

Pure request logic (paths, ranges, ETags, hosts) is checked table-driven without a server first.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

import atomicsite
from atomicsite.errors import ConfigError, StoreError
from atomicsite.layout import channel_key, manifest_key
from atomicsite.serve import ServeConfig, create_app, serve_config
from atomicsite.serve.config import host_rules
from atomicsite.serve.resolve import (
    UNSATISFIABLE, BadPath, ByteRange, etag_matches, lookup, normal_host, parse_range, pin_candidate, site_path,
)
from atomicsite.stores.local import LocalStore

from .helpers import FIXTURES, SETTINGS, OpsStore

ROOT = Path(__file__).resolve().parent.parent
NAV = {"sec-fetch-mode": "navigate", "sec-fetch-dest": "document", "accept": "text/html"}

# -- helpers shared with test_serve_concurrency -----------------------------------------------------


@contextlib.contextmanager
def serving(app):
    """Run ``app`` under granian (the server ``atomicsite serve`` uses, embedded: one worker on an
    event loop in a thread) on a free 127.0.0.1 port; yield its base URL."""
    import asyncio

    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    port = free_port()
    server = Server(app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, http=HTTPModes.http1,
                    websockets=False, log_enabled=False)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()

    def up():
        assert thread.is_alive(), "granian did not start"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    wait_for(up, timeout=10, what="granian to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(server.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def serving_uvicorn(app):
    """The same under uvicorn: the router is a plain ASGI app, not tied to one server."""
    import uvicorn

    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every response (headers, then body) waits out a 40 ms delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_build(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True)
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def publish(store, build: Path, **kwargs) -> str:
    return atomicsite.publish(build, store, settings=SETTINGS, source={}, **kwargs).version


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def raw_request(base: str, target: bytes, *, method: bytes = b"GET", host: bytes = b"127.0.0.1") -> tuple[int, bytes]:
    """Send a request line as given (httpx would normalise it); return status and body."""
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.fixture
def router():
    """``router(store, **options)`` → base URL of a running router (stopped after the test)."""
    with contextlib.ExitStack() as stack:
        def start(store, **options):
            options.setdefault("pointer_ttl", 0.05)
            app = create_app(store, settings=SETTINGS, **options)
            return stack.enter_context(serving(app))

        yield start


def blog(tmp_path: Path) -> Path:
    out = tmp_path / "blog"
    shutil.copytree(FIXTURES / "blog", out)
    return out


# -- pure logic -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/..", "/../x", "/a/../b", "/a/..", "/./a", "/a/./b", "/.", "//etc/passwd", "/a//b", "/a\\b", "/..\\x",
    "/a\x00b", "/a\nb", "/a\rb", "/\x7f", "relative", "", "/" + "a" * 5000,
])
def test_site_path_refuses_what_no_browser_sends(path):
    with pytest.raises(BadPath):
        site_path(path)


@pytest.mark.parametrize("path, rel", [
    ("/", ""), ("/about", "about"), ("/about/", "about/"), ("/a/b.css", "a/b.css"), ("/..a/b..", "..a/b.."),
    ("/100%.txt", "100%.txt"), ("/ünïcødé/日本語.txt", "ünïcødé/日本語.txt"), ("/with space", "with space"),
])
def test_site_path_keeps_ordinary_paths(path, rel):
    assert site_path(path) == rel


FILES = {p: p for p in ["index.html", "about.html", "about/index.html", "docs/index.html", "a.css", "blog.html"]}


@pytest.mark.parametrize("rel, found", [
    ("", "index.html"), ("index.html", "index.html"), ("about", "about.html"), ("about/", "about/index.html"),
    ("docs", None), ("docs/", "docs/index.html"), ("blog", "blog.html"), ("blog/", None),
    ("a.css", "a.css"), ("a", None), ("missing", None), ("about/index", "about/index.html"),
])
def test_lookup_directories_and_clean_urls(rel, found):
    assert lookup(FILES, rel) == found


@pytest.mark.parametrize("header, size, expected", [
    (None, 10, None), ("bytes=0-4", 10, ByteRange(0, 5)), ("bytes=5-", 10, ByteRange(5, 10)),
    ("bytes=-3", 10, ByteRange(7, 10)), ("bytes=-30", 10, ByteRange(0, 10)), ("bytes=8-100", 10, ByteRange(8, 10)),
    ("BYTES=1-1", 10, ByteRange(1, 2)), ("bytes=10-", 10, UNSATISFIABLE), ("bytes=-0", 10, UNSATISFIABLE),
    ("bytes=0-", 0, UNSATISFIABLE), ("bytes=5-4", 10, None), ("bytes=0-1,3-4", 10, None), ("items=0-1", 10, None),
    ("bytes=a-b", 10, None), ("bytes=-", 10, None), ("bytes=1", 10, None),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header, matches", [
    ('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True), ("*", True), ('"abcd"', False), (None, False),
    ("abc", False),
])
def test_if_none_match_is_weak_comparison(header, matches):
    assert etag_matches(header, '"abc"') is matches


@pytest.mark.parametrize("host, channel", [
    ("www.example.com", "live"), ("pr-12.preview.example.com", "pr-12"), ("PR-12.Preview.Example.com:8443", "pr-12"),
    ("a.b.preview.example.com", "live"), ("preview.example.com", "staging"), ("x.example.net", "live"),
    ("", "live"), ("-x.preview.example.com", "live"), ("docs-3.example.org", "docs-v3"), ("[::1]:8000", "live"),
    ("bad.weird.example", None),
])
def test_hosts_map_to_channels(host, channel):
    config = ServeConfig(host_channels=host_rules({
        "{channel}.preview.example.com": "{channel}",
        "preview.example.com": "staging",
        "docs-{n}.example.org": "docs-v{n}",
        "{x}.weird.example": "_{x}",  # yields an invalid channel name: no site, not some other one
    }, where="test"))
    assert config.channel_for(normal_host(host)) == channel


def test_exact_hosts_win_over_patterns():
    rules = host_rules({"{channel}.example.com": "{channel}", "www.example.com": "live"}, where="t")
    assert ServeConfig(channel="other", host_channels=rules).channel_for("www.example.com") == "live"


@pytest.mark.parametrize("table, message", [
    ({"pointer_ttl": "soon"}, "pointer_ttl"), ({"nope": 1}, "unknown setting 'nope'"),
    ({"host_channels": {"{a}.x.com": "{b}"}}, "does not capture"), ({"host_channels": {"x.com": "Bad Name"}}, "x.com"),
    ({"host_channels": ["x.example.com"]}, "must contain {channel}"), ({"spa_fallback": "../x"}, "spa_fallback"),
    ({"channel": "UP"}, "channel"), ({"port": 70000}, "port"), ({"cookie_name": "a b"}, "cookie_name"),
])
def test_serve_config_errors_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        ServeConfig.from_mapping(table, where="atomicsite.toml [serve]")


def test_serve_table_of_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "atomicsite.toml").write_text(textwrap.dedent("""
        channel = "main"
        [serve]
        pointer_ttl = "2s"
        spa_fallback = true
        port = 9000
        [serve.host_channels]
        "{channel}.preview.example.com" = "{channel}"
    """))
    monkeypatch.chdir(tmp_path)
    config = serve_config(atomicsite.load_settings(env={}))
    assert (config.channel, config.pointer_ttl, config.spa_fallback, config.port) == ("main", 2.0, "index.html", 9000)
    assert config.channel_for("pr-1.preview.example.com") == "pr-1"
    assert config.with_overrides(pointer_ttl=0.5, port=None).pointer_ttl == 0.5


def test_pin_comes_from_header_then_cookie():
    v1, v2 = "a" * 16, "b" * 16
    assert pin_candidate({"cookie": f"x=1; atomicsite_version={v1}"}, "atomicsite_version") == v1
    assert pin_candidate({"cookie": f"atomicsite_version={v1}", "x-atomicsite-version": v2}, "atomicsite_version") == v2
    assert pin_candidate({"cookie": "atomicsite_version=../../etc"}, "atomicsite_version") is None


# -- over HTTP, on every store --------------------------------------------------------------------

BLOG_ROUTES = [
    ("/", "index.html"), ("/index.html", "index.html"),
    ("/about/", "about/index.html"), ("/posts/2024/hello-world/", "posts/2024/hello-world/index.html"),
    ("/robots.txt", "robots.txt"),
    ("/assets/main.3f9a1c2b.css", "assets/main.3f9a1c2b.css"), ("/feed.xml", "feed.xml"),
    ("/site.webmanifest", "site.webmanifest"), ("/index.html?utm=../../x", "index.html"),
]


@pytest.mark.usefixtures("layout")  # both layouts: v/<version>/ trees and the objects pool
def test_serves_the_live_version_with_its_manifest_headers(rig, router, tmp_path):
    build = blog(tmp_path)
    result = atomicsite.publish(build, rig.store, settings=SETTINGS, source={})
    entries = result.plan.manifest.by_path
    base = router(rig.store)
    with httpx.Client(base_url=base) as c:
        for route, path in BLOG_ROUTES:
            r = c.get(route)
            entry = entries[path]
            assert r.status_code == 200, route
            assert r.content == (build / path).read_bytes(), route
            assert r.headers["content-type"] == entry.content_type
            assert r.headers["cache-control"] == entry.cache_control
            assert r.headers["etag"] == f'"{entry.sha256}"'
            assert r.headers["x-atomicsite-version"] == result.version
            assert int(r.headers["content-length"]) == entry.size
        # a directory without its slash is redirected to it, query kept (docs/serve.md)
        for route, location in [("/about", "/about/"), ("/posts/2024/hello-world?x=1&y=%2F", "/posts/2024/hello-world/?x=1&y=%2F")]:
            r = c.get(route)
            assert (r.status_code, r.headers["location"]) == (301, location), route
        for route in ["/missing", "/about.html", "/assets/", "/posts/2024/", "/v/" + result.version + "/index.html",
                      "/current/index.html"]:
            r = c.get(route)
            assert r.status_code == 404, route
            assert r.headers["x-atomicsite-version"] == result.version


@pytest.mark.usefixtures("layout")  # both layouts: v/<version>/ trees and the objects pool
def test_head_ranges_and_conditional_requests(rig, router, tmp_path):
    build = make_build(tmp_path / "b", {"index.html": "<p>hi</p>", "data.bin": bytes(range(256)) * 4,
                                        "empty.txt": b""})
    version = publish(rig.store, build)
    data = (build / "data.bin").read_bytes()
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    base = router(rig.store)
    with httpx.Client(base_url=base) as c:
        head = c.head("/data.bin")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == "1024" and head.headers["etag"] == etag
        assert head.headers["x-atomicsite-version"] == version and head.headers["accept-ranges"] == "bytes"
        for spec, start, end in [("bytes=0-9", 0, 10), ("bytes=1000-", 1000, 1024), ("bytes=-24", 1000, 1024),
                                 ("bytes=500-5000", 500, 1024)]:
            r = c.get("/data.bin", headers={"range": spec})
            assert r.status_code == 206, spec
            assert r.content == data[start:end], spec
            assert r.headers["content-range"] == f"bytes {start}-{end - 1}/1024"
        r = c.get("/data.bin", headers={"range": "bytes=2000-"})
        assert r.status_code == 416 and r.headers["content-range"] == "bytes */1024"
        assert c.get("/empty.txt", headers={"range": "bytes=0-"}).status_code == 416
        assert c.get("/empty.txt").content == b""
        whole = c.get("/data.bin", headers={"range": "bytes=0-1,5-6"})  # several ranges: the whole file
        assert whole.status_code == 200 and whole.content == data
        stale = c.get("/data.bin", headers={"range": "bytes=0-9", "if-range": '"old"'})
        assert stale.status_code == 200 and stale.content == data
        fresh = c.get("/data.bin", headers={"range": "bytes=0-9", "if-range": etag})
        assert fresh.status_code == 206 and fresh.content == data[:10]
        for inm in [etag, f"W/{etag}", f'"other", {etag}', "*"]:
            r = c.get("/data.bin", headers={"if-none-match": inm})
            assert r.status_code == 304 and r.content == b"", inm
            assert r.headers["etag"] == etag and r.headers["x-atomicsite-version"] == version
        assert c.get("/data.bin", headers={"if-none-match": '"other"'}).status_code == 200
        assert c.head("/missing").status_code == 404


@pytest.mark.usefixtures("layout")  # both layouts: v/<version>/ trees and the objects pool
def test_large_files_stream_in_chunks(rig, router, tmp_path):
    payload = os.urandom(700_000)
    version = publish(rig.store, make_build(tmp_path / "b", {"index.html": "x", "big.bin": payload}))
    base = router(rig.store, body_cache_file_limit=4096)
    with httpx.Client(base_url=base) as c:
        r = c.get("/big.bin")
        assert r.status_code == 200 and r.content == payload and r.headers["x-atomicsite-version"] == version
        r = c.get("/big.bin", headers={"range": "bytes=123456-654320"})
        assert r.status_code == 206 and r.content == payload[123456:654321]


@pytest.mark.usefixtures("layout")  # both layouts: v/<version>/ trees and the objects pool
def test_follows_the_pointer_within_the_ttl(rig, router, tmp_path):
    build = blog(tmp_path)
    v1 = publish(rig.store, build)
    base = router(rig.store, pointer_ttl=0.2)
    (build / "index.html").write_text("<h1>v2</h1>")
    with httpx.Client(base_url=base) as c:
        assert c.get("/").headers["x-atomicsite-version"] == v1
        v2 = publish(rig.store, build)
        switched = time.monotonic()
        wait_for(lambda: c.get("/").headers["x-atomicsite-version"] == v2, what="v2 to be served")
        assert time.monotonic() - switched < 0.2 + 1.0  # the TTL, plus generous slack for a busy machine
        assert c.get("/").text == "<h1>v2</h1>"
        atomicsite.rollback(rig.store, settings=SETTINGS)
        wait_for(lambda: c.get("/").headers["x-atomicsite-version"] == v1, what="rollback to v1")
        assert c.get("/about/").status_code == 200


@pytest.mark.usefixtures("layout")  # both layouts: v/<version>/ trees and the objects pool
def test_404_page_and_spa_fallback(rig, router, tmp_path):
    spa = tmp_path / "spa"
    shutil.copytree(FIXTURES / "spa", spa)
    version = publish(rig.store, spa)
    page404, index = (spa / "404.html").read_bytes(), (spa / "index.html").read_bytes()
    plain, fallback = router(rig.store), router(rig.store, spa_fallback=True)
    with httpx.Client(base_url=plain) as c:
        r = c.get("/no/such/page", headers=NAV)
        assert r.status_code == 404 and r.content == page404 and r.headers["x-atomicsite-version"] == version
        assert c.get("/assets/missing.js").status_code == 404
    with httpx.Client(base_url=fallback) as c:
        for route, headers in [("/dashboard/settings", NAV), ("/users/42", {}), ("/a.b/page", {"accept": "text/html"})]:
            r = c.get(route, headers=headers)
            assert r.status_code == 200 and r.content == index, route
        r = c.get("/assets/missing.js", headers={"accept": "*/*"})
        assert r.status_code == 404 and r.content == page404
        assert c.get("/assets/index-BfK2x9Qa.js").status_code == 200


def test_channels_by_host(rig, router, tmp_path):
    v_live = publish(rig.store, blog(tmp_path))
    spa = tmp_path / "spa"
    shutil.copytree(FIXTURES / "spa", spa)
    v_pr = publish(rig.store, spa, channel="pr-12")
    base = router(rig.store, host_channels={"{channel}.preview.example.com": "{channel}",
                                            "staging.example.com": "pr-12"})
    with httpx.Client(base_url=base) as c:
        for host, version in [("pr-12.preview.example.com", v_pr), ("staging.example.com:443", v_pr),
                              ("www.example.com", v_live), ("127.0.0.1", v_live)]:
            r = c.get("/", headers={"host": host})
            assert r.status_code == 200 and r.headers["x-atomicsite-version"] == version, host
        r = c.get("/", headers={"host": "pr-99.preview.example.com"})
        assert r.status_code == 503 and "nothing published" in r.text
        assert c.get("/about/", headers={"host": "pr-12.preview.example.com"}).status_code == 404


@pytest.mark.usefixtures("layout")  # both layouts: v/<version>/ trees and the objects pool
def test_skew_protection_pins_assets_to_the_page_version(rig, router, tmp_path):
    def site(n: int, only: str):
        return make_build(tmp_path / f"b{n}", {
            "index.html": f'<script src="/app.js"></script><link href="/{only}">v{n}',
            "app.js": f"console.log('v{n}')",  # same path in every version: only a pin can pick the right one
            only: f"/* only in v{n} */",
            "404.html": f"<h1>v{n}: not found</h1>",
        })

    v1 = publish(rig.store, site(1, "assets/one.1a2b3c4d5e.css"))
    base = router(rig.store)
    off = router(rig.store, skew_protection=False)
    with httpx.Client(base_url=base) as tab1:
        page = tab1.get("/", headers=NAV)
        assert page.headers["x-atomicsite-version"] == v1
        assert page.headers["set-cookie"].startswith(f"atomicsite_version={v1};")
        v2 = publish(rig.store, site(2, "assets/two.9f8e7d6c5b.css"))
        unrelated = publish(rig.store, site(3, "assets/three.5e6d7c8b9a.css"), channel="pr-1")
        wait_for(lambda: httpx.get(base + "/").headers["x-atomicsite-version"] == v2, what="v2 live")

        r = tab1.get("/app.js")  # the open page keeps its own version's assets
        assert (r.status_code, r.text, r.headers["x-atomicsite-version"]) == (200, "console.log('v1')", v1)
        assert "set-cookie" not in r.headers
        assert tab1.get("/assets/one.1a2b3c4d5e.css").headers["x-atomicsite-version"] == v1
        missing = tab1.get("/favicon.ico")  # the live 404 page answers, but must not move the pin
        assert missing.status_code == 404 and "set-cookie" not in missing.headers
        assert tab1.get("/app.js").headers["x-atomicsite-version"] == v1
        nav = tab1.get("/app.js", headers=NAV)  # opening it as a page is a navigation: live
        assert nav.headers["x-atomicsite-version"] == v2
        reload = tab1.get("/", headers=NAV)  # a reload gets live and moves the pin
        assert reload.headers["x-atomicsite-version"] == v2 and f"atomicsite_version={v2}" in reload.headers["set-cookie"]
        assert tab1.get("/app.js").text == "console.log('v2')"
        # tab 1's page is still open but another tab moved the cookie: its fingerprinted asset is found in v1
        older = tab1.get("/assets/one.1a2b3c4d5e.css")
        assert older.status_code == 200 and older.headers["x-atomicsite-version"] == v1

    cases = [  # (request headers, version that must answer /app.js)
        ({}, v2),
        ({"x-atomicsite-version": v1}, v1),
        ({"cookie": f"atomicsite_version={v1}", "x-atomicsite-version": v2}, v2),
        ({"cookie": f"atomicsite_version={unrelated}"}, v2),  # never served by this channel
        ({"cookie": "atomicsite_version=" + "f" * 16}, v2),
        ({"cookie": "atomicsite_version=garbage"}, v2),
        ({"cookie": f"atomicsite_version={v1}", **NAV}, v2),
    ]
    for headers, expected in cases:
        r = httpx.get(base + "/app.js", headers=headers)
        assert r.status_code == 200 and r.headers["x-atomicsite-version"] == expected, headers
    assert httpx.get(base + "/assets/one.1a2b3c4d5e.css").status_code == 404  # unpinned: live only
    lost = httpx.get(base + "/no/such/page", headers={"cookie": f"atomicsite_version={v1}", **NAV})
    assert lost.status_code == 404 and f"atomicsite_version={v2}" in lost.headers["set-cookie"]
    r = httpx.get(off + "/app.js", headers={"cookie": f"atomicsite_version={v1}"})
    assert r.headers["x-atomicsite-version"] == v2
    assert "set-cookie" not in httpx.get(off + "/").headers


def test_a_pruned_pin_falls_back_to_live(tmp_path, router):
    store = LocalStore(tmp_path / "site")

    def site(n):
        return make_build(tmp_path / f"b{n}", {"index.html": f"v{n}", "app.js": f"v{n}", "logo.svg": f"<svg>{n}</svg>"})

    v1 = publish(store, site(1))
    watching = router(store, pin_recheck=0)
    trusting = router(store, pin_recheck=3600)  # has not noticed the prune: the object reads fail instead
    cookie = {"cookie": f"atomicsite_version={v1}"}
    publish(store, site(2))
    v3 = publish(store, site(3))
    for base in (watching, trusting):
        wait_for(lambda: httpx.get(base + "/").headers["x-atomicsite-version"] == v3, what="v3 live")
        assert httpx.get(base + "/app.js", headers=cookie).text == "v1"
    atomicsite.prune(store, keep=1, grace=0, settings=SETTINGS)
    assert not (tmp_path / "site" / "v" / v1).exists()
    for base in (watching, trusting):
        r = httpx.get(base + "/logo.svg", headers=cookie)
        assert (r.status_code, r.text, r.headers["x-atomicsite-version"]) == (200, "<svg>3</svg>", v3)


HOSTILE = [  # (request target, expected status)
    (b"/../_atomicsite/channels/live.json", 400),
    (b"/%2e%2e/_atomicsite/channels/live.json", 400),
    (b"/%2E%2E%2F_atomicsite%2Fchannels%2Flive.json", 400),
    (b"/assets/..%2f..%2f_atomicsite/channels/live.json", 400),
    (b"/..", 400), (b"/.", 400), (b"/./index.html", 400), (b"/assets/./main.3f9a1c2b.css", 400),
    (b"//etc/passwd", 400), (b"/assets//main.3f9a1c2b.css", 400),
    (b"/assets\\..\\index.html", 400), (b"/assets%5c..%5cindex.html", 400), (b"/%5c%5cserver%5cshare", 400),
    (b"/index.html%00", 400), (b"/%00", 400), (b"/index.html%0d%0aX-Injected:%20yes", 400),
    (b"/" + b"a" * 5000, 400),
    (b"http://127.0.0.1/../_atomicsite/channels/live.json", 400),
    (b"/_atomicsite/channels/live.json", 404), (b"/_atomicsite%2fchannels%2flive.json", 404),
    (b"/_atomicsite/manifests/{v}.json", 404), (b"/_atomicsite/", 404), (b"/_atomicsite", 404),
    (b"/v/{v}/index.html", 404), (b"/current/index.html", 404), (b"/%ff%fe", 404),
    (b"/index.html?../../_atomicsite/channels/live.json", 200),
]


def test_hostile_requests_are_refused(rig, router, tmp_path):
    version = publish(rig.store, blog(tmp_path))
    base = router(rig.store)
    index = (tmp_path / "blog" / "index.html").read_bytes()
    for target, expected in HOSTILE:
        target = target.replace(b"{v}", version.encode())
        status, body = raw_request(base, target)
        assert status == expected, target
        assert b'"channel"' not in body and b'"files"' not in body, target  # no pointer, no manifest
        if expected == 200:
            assert body == index
    for method in [b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE"]:
        assert raw_request(base, b"/", method=method)[0] == 405, method
    assert raw_request(base, b"*", method=b"OPTIONS")[0] == 405
    for host in [b"../../etc", b"_atomicsite", b"[::1", b"a" * 300]:
        assert raw_request(base, b"/", host=host)[0] == 200, host  # unknown hosts get the default channel


def test_odd_names(router, tmp_path):
    store = LocalStore(tmp_path / "site")
    odd = FIXTURES / "odd-names"
    publish(store, odd)
    base = router(store)
    with httpx.Client(base_url=base) as c:
        for route, path in [("/100%25.txt", "100%.txt"), ("/issue%2342.txt", "issue#42.txt"),
                            ("/c++notes.txt", "c++notes.txt"), ("/with%20space/page%20one", "with space/page one.html"),
                            ("/%C3%BCn%C3%AFc%C3%B8d%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E.txt", "ünïcødé/日本語.txt"),
                            ("/empty.txt", "empty.txt")]:
            r = c.get(route)
            assert r.status_code == 200 and r.content == (odd / path).read_bytes(), route


# -- what the router costs the store, and how it fails -------------------------------------------

def test_requests_cost_no_store_reads_within_the_ttl(tmp_path, router):
    inner = LocalStore(tmp_path / "site")
    publish(inner, blog(tmp_path))
    store = OpsStore(inner)
    base = router(store, pointer_ttl=4.0)  # long enough for 80 requests on a loaded CI machine
    with httpx.Client(base_url=base) as c:
        assert c.get("/").status_code == 200
        start = time.monotonic()
        for _ in range(20):
            for route in ["/", "/about/", "/assets/main.3f9a1c2b.css", "/missing"]:
                c.get(route)
        # under half the TTL: past that a busy router re-reads the pointer in the background
        assert time.monotonic() - start < 2.0, "too slow to prove anything on this machine"
        pointer_reads = [k for op, k in store.calls if op == "get" and k == channel_key("live")]
        manifest_reads = [k for op, k in store.calls if op == "get" and k.startswith("_atomicsite/manifests/")]
        assert (len(pointer_reads), len(manifest_reads)) == (1, 1)
        assert store.count("open") == 3  # each small file once, then from memory
        assert store.count("head", "list", "put") == 0
        time.sleep(4.1)
        c.get("/")  # past the TTL: the request waits for the pointer to be read again
        assert len([k for op, k in store.calls if op == "get" and k == channel_key("live")]) == 2


def test_store_failures_are_502_without_a_traceback(tmp_path, router, caplog):
    inner = LocalStore(tmp_path / "site")
    publish(inner, blog(tmp_path))

    def broken(op, args):
        if op == "open":
            raise StoreError("injected: the bucket is on fire")

    base = router(OpsStore(inner, before=broken))
    with caplog.at_level(logging.INFO, logger="atomicsite.serve"):
        r = httpx.get(base + "/about/")
    assert r.status_code == 502 and "Traceback" not in r.text and "fire" not in r.text
    assert any("bucket is on fire" in rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR)


def test_corrupt_manifest_and_empty_channel(tmp_path, router):
    store = LocalStore(tmp_path / "site")
    base = router(store)
    assert httpx.get(base + "/").status_code == 503  # nothing published yet
    version = publish(store, blog(tmp_path))
    store.put(manifest_key(version), b'{"format": 1, "version": "nope"}')
    counted = OpsStore(store)
    fresh = router(counted)
    with httpx.Client(base_url=fresh) as c:
        for _ in range(10):
            r = c.get("/")
            assert r.status_code == 502 and "Traceback" not in r.text
    # the failure is remembered briefly: a broken manifest does not cost a store read per request
    assert len([k for op, k in counted.calls if op == "get" and k == manifest_key(version)]) <= 2


def test_app_from_env_is_a_uvicorn_factory(tmp_path, monkeypatch):
    target = tmp_path / "site"
    version = publish(LocalStore(target), blog(tmp_path))
    (tmp_path / "atomicsite.toml").write_text('[serve]\nspa_fallback = true\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATOMICSITE_TARGET", str(target))
    from atomicsite.serve import app_from_env

    app = app_from_env()
    assert app.config.spa_fallback == "index.html"
    with serving_uvicorn(app) as base:
        r = httpx.get(base + "/some/client/route")
        assert r.status_code == 200 and r.headers["x-atomicsite-version"] == version


def test_a_failing_pointer_read_keeps_the_last_good_pointer(tmp_path, router, caplog):
    inner = LocalStore(tmp_path / "site")
    version = publish(inner, blog(tmp_path))
    failing = threading.Event()

    def flaky(op, args):
        if failing.is_set() and op == "get" and args[0] == channel_key("live"):
            raise StoreError("injected: pointer read failed")

    base = router(OpsStore(inner, before=flaky), pointer_ttl=0.05)
    assert httpx.get(base + "/").headers["x-atomicsite-version"] == version
    failing.set()
    time.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="atomicsite.serve"):
        r = httpx.get(base + "/")
        wait_for(lambda: any("pointer read failed" in rec.getMessage() for rec in caplog.records),
                 what="the warning about the failed re-read")
    assert r.status_code == 200 and r.headers["x-atomicsite-version"] == version


def test_access_log_has_one_line_per_request(tmp_path, router, caplog):
    store = LocalStore(tmp_path / "site")
    version = publish(store, blog(tmp_path))
    base = router(store)
    with caplog.at_level(logging.INFO, logger="atomicsite.serve"):
        httpx.get(base + "/about/")
        httpx.get(base + "/nope?q=1")
        wait_for(lambda: len([r for r in caplog.records if r.name == "atomicsite.serve"]) >= 2, what="log lines")
    lines = [r.getMessage() for r in caplog.records if r.name == "atomicsite.serve"]
    size = (tmp_path / "blog" / "about" / "index.html").stat().st_size
    assert any(f'"GET /about/" 200 {size} live@{version}' in line for line in lines), lines
    assert any('"GET /nope?q=1" 404' in line and f"live@{version}" in line for line in lines), lines
    record = next(r for r in caplog.records if r.name == "atomicsite.serve")
    assert record.atomicsite["status"] == 200 and record.atomicsite["version"] == version


def test_mounted_under_a_root_path(tmp_path):
    store = LocalStore(tmp_path / "site")
    version = publish(store, blog(tmp_path))
    site = create_app(store, settings=SETTINGS)

    async def host_app(scope, receive, send):  # the user's own ASGI stack, mounting the site at /docs
        if scope["type"] == "http" and scope["path"].startswith("/docs/"):
            await site({**scope, "root_path": "/docs"}, receive, send)
            return
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b"mine"})
            return
        await site(scope, receive, send)

    with serving(host_app) as base:
        r = httpx.get(base + "/docs/about/")
        assert r.status_code == 200 and r.headers["x-atomicsite-version"] == version
        assert httpx.get(base + "/docs/").headers["set-cookie"].endswith("Path=/docs; SameSite=Lax")
        assert httpx.get(base + "/other").status_code == 418


# -- run(): granian, access log to stdout, graceful shutdown --------------------------------------

def test_run_serves_logs_and_finishes_in_flight_responses_on_sigterm(tmp_path):
    store = LocalStore(tmp_path / "site")
    payload = os.urandom(12 << 20)
    version = publish(store, make_build(tmp_path / "b", {"index.html": "hi", "big.bin": payload}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (f"from atomicsite.serve import create_app, run\n"
            f"run(create_app({str(store.root)!r}, body_cache_file_limit=0), port={port}, graceful_timeout=20)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        base = f"http://127.0.0.1:{port}"

        def up():
            try:
                return httpx.get(base + "/").status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                return False

        wait_for(up, timeout=20, what="the router to start")
        got = bytearray()
        with httpx.stream("GET", base + "/big.bin", timeout=30) as r:
            assert r.headers["x-atomicsite-version"] == version
            chunks = r.iter_bytes(65536)
            got += next(chunks)
            proc.send_signal(signal.SIGTERM)  # mid-response: granian stops accepting, lets this one finish
            time.sleep(0.3)
            for chunk in chunks:
                got += chunk
        assert bytes(got) == payload
        # 0, or the signal's status where the server re-raises it once it has shut down
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        out = proc.stdout.read().decode()
        assert f'"GET /big.bin" 200 {len(payload)} live@{version}' in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_review_findings_hostile_range_removed_files_and_pinned_caching(tmp_path):
    """A removed file stays gone for every client; odd Range values never cause a 500; answers chosen
    by a client's pin are not cacheable by shared caches unless the name is fingerprinted."""
    import asyncio

    import httpx

    from atomicsite.serve import create_app
    from atomicsite.stores.local import LocalStore

    from .helpers import SETTINGS, publish, site

    store = LocalStore(tmp_path / "root")
    build = site(tmp_path)
    (build / "secret.json").write_text('{"key": "leak"}')
    v1 = publish(build, store).version
    (build / "secret.json").unlink()
    (build / "assets" / "main.3f9a1c2b.css").rename(build / "assets" / "main.7d7d7d7d.css")
    for page in build.rglob("*.html"):  # as a rebuild would (the link gate refuses a build that does not)
        page.write_text(page.read_text().replace("main.3f9a1c2b.css", "main.7d7d7d7d.css"))
    v2 = publish(build, store).version
    app = create_app(store, settings=SETTINGS, pointer_ttl=0.01)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://site.test") as client:
            out = {}
            for name, pin in (("none", None), ("live", v2), ("old", v1)):
                headers = {"x-atomicsite-version": pin} if pin else {}
                out[name] = (await client.get("/secret.json", headers=headers)).status_code
            for value in ("bytes=²-", "bytes=0-" + "9" * 5000, "bytes=" + "1" * 5000 + "-"):
                r = await client.get("/robots.txt", headers={"range": value.encode("latin-1")})
                out.setdefault("ranges", []).append(r.status_code)
            old_css = await client.get("/assets/main.3f9a1c2b.css", headers={"x-atomicsite-version": v1})
            out["old_css"] = (old_css.status_code, old_css.headers["cache-control"])
            return out

    out = asyncio.run(go())
    assert out["none"] == 404 and out["live"] == 404
    assert out["old"] == 200  # a client pinned to the version that had it still gets it (skew protection)
    assert all(code in (200, 206, 416) for code in out["ranges"]), out["ranges"]
    assert out["old_css"] == (200, "public, max-age=31536000, immutable")
