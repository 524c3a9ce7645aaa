"""verify_urls belong to a channel: a preview publish is never health-checked against production."""

import functools
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.config import Settings, load_settings
from atomicsite.errors import ConfigError, HealthCheckFailed
from atomicsite.stores.local import LocalStore

from .helpers import site


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def stale_server(tmp_path):
    """A web server stuck on content no version has (a CDN serving something else)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("not any version")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def settings_from(tmp_path, toml: str) -> Settings:
    (tmp_path / "atomicsite.toml").write_text(toml)
    return replace(load_settings(cwd=tmp_path, env={}), concurrency=8, verify_timeout=0.5)


def test_top_level_verify_urls_belong_to_the_config_channel_only(tmp_path):
    s = settings_from(tmp_path, 'verify_urls = ["https://www.example.com/"]\n')
    assert s.verify_urls_for("live") == ("https://www.example.com/",)
    assert s.verify_urls_for("pr-1") == ()
    s = settings_from(tmp_path, 'channel = "staging"\nverify_urls = ["https://staging.example.com/"]\n')
    assert s.verify_urls_for("staging") == ("https://staging.example.com/",) and s.verify_urls_for("live") == ()


def test_channel_tables_exact_names_first_then_globs_with_the_channel_filled_in(tmp_path):
    s = settings_from(tmp_path, '''
verify_urls = ["https://www.example.com/"]
[channels."pr-*"]
verify_urls = ["https://{channel}.preview.example.com/"]
[channels.pr-special]
verify_urls = ["https://special.example.com/"]
[channels.live]
verify_urls = ["https://www.example.com/", "https://www.example.com/about/"]
''')
    assert s.verify_urls_for("live") == ("https://www.example.com/", "https://www.example.com/about/")
    assert s.verify_urls_for("pr-42") == ("https://pr-42.preview.example.com/",)
    assert s.verify_urls_for("pr-special") == ("https://special.example.com/",)
    assert s.verify_urls_for("staging") == ()
    # given for one command (--verify-url), they apply to whatever channel it moves
    assert replace(s, verify_urls=("https://x.example/",)).verify_urls_for("pr-1") == ("https://x.example/",)


@pytest.mark.parametrize("toml, key", [
    ('[channels.live]\nverify_urls = ["/relative"]\n', "channels.live.verify_urls"),
    ('[channels.live]\nurls = ["https://x/"]\n', "channels.live"),
    ('[channels."Bad Name"]\nverify_urls = []\n', 'channels.Bad Name'),
    ('channels = 3\n', "channels"),
    ('verify_urls = ["ftp://x/"]\n', "verify_urls"),
])
def test_channel_config_errors_name_the_key(tmp_path, toml, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        settings_from(tmp_path, toml)


def test_preview_publish_is_not_checked_against_the_production_url(tmp_path, stale_server):
    store = LocalStore(tmp_path / "site")
    build = site(tmp_path)
    settings = settings_from(tmp_path, f'verify_urls = ["{stale_server}/"]\n')
    preview = atomicsite.publish(build, store, channel="pr-1", settings=settings, source={})
    assert preview.switched and read_pointer(store, "pr-1").version == preview.version
    # the same URLs do guard live: the stale server fails the check there
    with pytest.raises(HealthCheckFailed):
        atomicsite.publish(build, store, settings=settings, source={})


def test_preview_channels_are_checked_against_their_own_urls(tmp_path, stale_server):
    store = LocalStore(tmp_path / "site")
    build = site(tmp_path)
    settings = settings_from(tmp_path, f'[channels."pr-*"]\nverify_urls = ["{stale_server}/?pr={{channel}}"]\n')
    with pytest.raises(HealthCheckFailed, match=r"pr=pr-2"):
        atomicsite.publish(build, store, channel="pr-2", settings=settings, source={})
    assert atomicsite.publish(build, store, settings=settings, source={}).switched  # live has none
