"""Sites shaped like Hugo, MkDocs, Docusaurus, Sphinx dirhtml and Jekyll output crawl clean through
every serving path: the router, the CloudFront Function (under Node, in front of an S3-like origin),
and, as the baseline, ``python -m http.server`` over the local store's ``current``.

A crawler (tests/crawl.py) fetches pages over real HTTP, follows same-site links as a browser resolves
them (against the URL after redirects) and collects every link answered with 4xx/5xx.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import atomicsite
from atomicsite.cdn import CloudFrontSettings, cloudfront_function_code
from atomicsite.cdn.edge_routes import compile_edge_routes, routes_keys
from atomicsite.serve import create_app
from atomicsite.stores.local import LocalStore

from .crawl import crawl
from .helpers import FIXTURES, SETTINGS
from .test_serve import serving

GENERATORS = ["hugo", "mkdocs", "docusaurus", "sphinx-dirhtml", "jekyll"]
# Links only a host with pretty URLs (Netlify, GitHub Pages, the router: /contact → contact.html) or
# with the site's _redirects rules (the Hugo fixture's old /old-posts/ and /feed links) answers.
NEEDS_RULES = {"jekyll": {"/contact"}, "hugo": {"/old-posts/first-post/", "/feed"}}


def published(tmp_path: Path, name: str) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    atomicsite.publish(FIXTURES / "generators" / name, store, settings=SETTINGS, source={})
    return store


@contextlib.contextmanager
def http_server(directory: Path):
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                             "--directory", str(directory)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = proc.stdout.readline()
        port = re.search(r"port (\d+)", line).group(1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


EDGE_SERVER = Path(__file__).with_name("edge_server.mjs")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH: cannot run the function")


def edge_kvs(manifest, channel: str = "live") -> dict[str, str]:
    """What EdgeKeySwitcher writes for a version: its routes, then the channel's key."""
    settings = CloudFrontSettings(mode="edge-key", kvs_arn="arn:aws:cloudfront::123456789012:key-value-store/k")
    routes = compile_edge_routes(manifest)
    items = dict(zip(routes_keys(settings.routes_key_prefix, manifest.version, len(routes.values)), routes.values))
    return {**items, settings.kvs_key(channel): manifest.version}


@contextlib.contextmanager
def edge(tmp_path: Path, bucket: Path, kvs: dict[str, str], prefix: str = ""):
    """CloudFront (the generated function under Node) in front of an S3-like origin at ``bucket``."""
    fn = tmp_path / "function.js"
    fn.write_text(cloudfront_function_code("atomicsite:live", prefix), encoding="utf-8")
    kvs_file = tmp_path / "kvs.json"
    kvs_file.write_text(json.dumps(kvs), encoding="utf-8")
    proc = subprocess.Popen(["node", str(EDGE_SERVER), str(fn), str(bucket), str(kvs_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening "), proc.stderr.read()
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        proc.terminate()
        proc.wait(10)


def broken_paths(result) -> set[str]:
    from urllib.parse import urlsplit

    return {urlsplit(url).path for url in result.broken}


@pytest.mark.parametrize("name", GENERATORS)
def test_generated_sites_crawl_clean_through_the_router(tmp_path, name):
    store = published(tmp_path, name)
    with serving(create_app(store, settings=SETTINGS, pointer_ttl=60)) as base:
        result = crawl(base)
        if name == "hugo":  # the fixture's _redirects and _headers at work
            assert result.redirects[f"{base}/old-posts/first-post/"] == f"{base}/posts/first-post/"
            assert httpx.get(f"{base}/posts/").headers["x-frame-options"] == "DENY"
    assert result.broken == {}, result.broken
    assert result.pages >= 8


@needs_node
@pytest.mark.parametrize("name", GENERATORS)
def test_generated_sites_crawl_clean_through_the_cloudfront_function(tmp_path, name):
    store = LocalStore(tmp_path / "store")
    result = atomicsite.publish(FIXTURES / "generators" / name, store, settings=SETTINGS, source={})
    with edge(tmp_path, store.root, edge_kvs(result.plan.manifest)) as base:
        crawled = crawl(base)
    assert crawled.broken == {}, crawled.broken
    assert crawled.pages >= 8


@pytest.mark.parametrize("name", GENERATORS)
def test_http_server_baseline(tmp_path, name):
    """The same files under python -m http.server: clean too, except what needs pretty URLs or rules."""
    store = published(tmp_path, name)
    with http_server(store.root / "current") as base:
        result = crawl(base)
    assert broken_paths(result) == NEEDS_RULES.get(name, set()), result.broken
    assert result.pages >= 8


def test_the_mkdocs_link_without_a_slash_is_redirected_so_relative_links_resolve(tmp_path, monkeypatch):
    """The case from issue 13: served 200 at /user-guide/getting-started, its ../configuration/ link broke."""
    store = published(tmp_path, "mkdocs")
    with serving(create_app(store, settings=SETTINGS)) as base:
        result = crawl(base)
    assert result.redirects[f"{base}/user-guide/getting-started"] == f"{base}/user-guide/getting-started/"
    assert result.broken == {}

    # The crawler does see the old behaviour's breakage: answer /dir with dir/index.html (no redirect).
    from atomicsite.routing.route import FILE, Route
    from atomicsite.serve import app as app_module

    real = app_module.route_request

    def old_router(manifest, rel, query):
        if rel and not rel.endswith("/") and rel + "/index.html" in manifest.by_path:
            return Route(FILE, path=rel + "/index.html")
        return real(manifest, rel, query)

    monkeypatch.setattr(app_module, "route_request", old_router)
    with serving(create_app(store, settings=SETTINGS)) as base:
        result = crawl(base)
    assert "/configuration/" in broken_paths(result), result.broken  # ../configuration/ one level too high
