"""--verify-url: after a switch, the new version must really be served, or the switch is undone."""

import functools
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.errors import HealthCheckFailed, UsageError
from atomicsite.stores.local import LocalStore

from .helpers import SETTINGS, site


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    """A plain static web server on 127.0.0.1; ``web(directory)`` starts one and returns its URL."""
    servers = []

    def start(directory):
        handler = functools.partial(Quiet, directory=str(directory))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def test_switch_is_kept_when_the_server_serves_the_new_version(tmp_path, web):
    store = LocalStore(tmp_path / "site")
    build = site(tmp_path)
    atomicsite.publish(build, store, settings=SETTINGS, source={})
    url = web(tmp_path / "site" / "current")  # follows the symlink per request, like nginx
    (build / "index.html").write_text("<h1>v2</h1>")
    checked = replace(SETTINGS, verify_urls=(url + "/", url + "/about/", url + "/index.html"), verify_timeout=10)
    result = atomicsite.publish(build, store, settings=checked, source={})
    assert result.switched and read_pointer(store, "live").version == result.version


def test_switch_back_when_the_new_version_is_not_served_in_time(tmp_path, web):
    store = LocalStore(tmp_path / "site")
    build = site(tmp_path)
    v1 = atomicsite.publish(build, store, settings=SETTINGS, source={}).version
    stale = web(tmp_path / "site" / "v" / v1)  # a CDN stuck on the old origin
    (build / "index.html").write_text("<h1>v2</h1>")
    checked = replace(SETTINGS, verify_urls=(stale + "/",), verify_timeout=1.0)
    with pytest.raises(HealthCheckFailed, match=f"switched 'live' back to {v1}"):
        atomicsite.publish(build, store, settings=checked, source={})
    pointer = read_pointer(store, "live").pointer
    assert pointer.version == v1 and pointer.action == "switch-back"
    assert store.live_link_target() == f"v/{v1}"
    assert [h.action for h in pointer.history[:2]] == ["switch-back", "publish"]


def test_promote_with_verify_url_and_a_url_outside_the_site(tmp_path, web):
    store = LocalStore(tmp_path / "site")
    build = site(tmp_path)
    v1 = atomicsite.publish(build, store, settings=SETTINGS, source={}).version
    (build / "index.html").write_text("two")
    v2 = atomicsite.publish(build, store, settings=SETTINGS, source={}).version
    url = web(tmp_path / "site" / "current")
    out = atomicsite.promote(v1, store, settings=SETTINGS, verify_urls=(url + "/posts/2024/hello-world/",))
    assert out.switched
    with pytest.raises(UsageError, match="maps to no file"):
        atomicsite.promote(v2, store, settings=SETTINGS, verify_urls=(url + "/no/such/page",))
    assert read_pointer(store, "live").version == v1


def test_a_relative_verify_url_is_refused_before_switching(tmp_path):
    store = LocalStore(tmp_path / "site")
    build = site(tmp_path)
    v1 = atomicsite.publish(build, store, settings=SETTINGS, source={}).version
    (build / "index.html").write_text("two")
    with pytest.raises(UsageError, match="absolute"):
        atomicsite.publish(build, store, settings=replace(SETTINGS, verify_urls=("/index.html",)), source={})
    assert read_pointer(store, "live").version == v1


def test_pin_that_fails_its_health_check_does_not_stay_pinned(tmp_path, web):
    store = LocalStore(tmp_path / "site")
    build = site(tmp_path)
    v1 = atomicsite.publish(build, store, settings=SETTINGS, source={}).version
    stale = web(tmp_path / "site" / "v" / v1)
    (build / "index.html").write_text("two")
    v2 = atomicsite.publish(build, store, settings=SETTINGS, source={}, promote=False).version
    checked = replace(SETTINGS, verify_urls=(stale + "/",), verify_timeout=0.5)
    with pytest.raises(HealthCheckFailed):
        atomicsite.pin(v2, store, settings=checked)
    pointer = read_pointer(store, "live").pointer
    assert pointer.version == v1 and not pointer.pinned


class Converging(SimpleHTTPRequestHandler):
    """Serves the old body until ``ready_at`` (monotonic), then the new one: a CDN catching up."""

    bodies: dict = {}

    def do_GET(self):
        import time

        body = self.bodies["new"] if time.monotonic() >= self.bodies["ready_at"] else self.bodies["old"]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("converges_after, passes", [(2.6, True), (None, False)])
def test_check_waits_the_whole_timeout(tmp_path, converges_after, passes):
    """verify_timeout 3 s: a server that converges at 2.6 s passes (the old loop gave up near 2 s, when
    its next back-off sleep would have crossed the deadline); one that never does fails, not before 3 s."""
    import time

    from atomicsite.healthcheck import check_urls
    from atomicsite.manifest import Manifest
    from atomicsite.scan import scan

    build = site(tmp_path)
    manifest = Manifest.build((f.entry for f in scan(build)), source={})
    handler = type("H", (Converging,), {"bodies": {"old": b"old", "new": (build / "index.html").read_bytes(),
                                                   "ready_at": time.monotonic() + (converges_after or 1e9)}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        failure = check_urls([f"http://127.0.0.1:{server.server_address[1]}/"], manifest, timeout=3.0)
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert (failure is None) == passes, failure
    if not passes:
        assert elapsed >= 3.0 and "within 3s" in failure
