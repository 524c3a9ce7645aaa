"""The CloudFront Function honours a version's URL rules as the router does (atomicsite.cdn.edge_routes).

The same requests go to the router and to the generated function under Node in front of an S3-like
origin (tests/edge_server.mjs); their answers must agree wherever the edge can express the rule.
"""

from __future__ import annotations

import httpx
import pytest

import atomicsite
from atomicsite.cdn.edge_routes import (KVS_VALUE_LIMIT, MAX_ROUTE_VALUES, EdgeRoutesTooLarge, compile_edge_routes)
from atomicsite.manifest import FileEntry, Manifest
from atomicsite.routing import Redirect, SiteRules
from atomicsite.serve import create_app
from atomicsite.stores.local import LocalStore

from .helpers import SETTINGS
from .test_crawl import edge, edge_kvs, needs_node
from .test_routing import SITE
from .test_serve import make_build, serving


def manifest(paths, rules=()) -> Manifest:
    files = [FileEntry(p, "0" * 64, 1, "0" * 32, "text/html", "no-cache") for p in paths]
    return Manifest.build(files, rules=SiteRules(redirects=tuple(rules)))


def record(m):
    import json

    values = compile_edge_routes(m).values
    text = values[0].split("|", 1)[1] + "".join(values[1:])
    return json.loads(text)


def test_routes_record_shadow_lists_pretty_urls_and_404_notes():
    m = manifest(["index.html", "old.html", "docs/index.html", "LICENSE", "a/b.html"], [
        Redirect("/old", "/new"), Redirect("/docs/*", "/manual/:splat"), Redirect("/x/*", "/y", 302, force=True),
        Redirect("/fr/*", "/fr/404.html", 404)])
    rec = record(m)
    assert rec["r"] == [["/old", "/new", 301, 0, ["/old"]], ["/docs/*", "/manual/:splat", 301, 0,
                                                               ["/docs", "/docs/", "/docs/index.html"]],
                        ["/x/*", "/y", 302, 1, []]]
    assert rec["p"] == ["/a/b", "/old"] and rec["e"] == ["/LICENSE"]
    notes = compile_edge_routes(m).notes
    assert len(notes) == 1 and notes[0].startswith("/fr/* /fr/404.html 404: 404 rules are not applied at the edge")
    assert compile_edge_routes(manifest(["index.html", "a/index.html"])).values == ()  # nothing to ship


def test_routes_that_do_not_fit_are_an_error_naming_the_limit():
    rules = [Redirect(f"/old/page-number-{i}", f"/new/page-number-{i}/") for i in range(300)]
    with pytest.raises(EdgeRoutesTooLarge) as err:
        compile_edge_routes(manifest(["index.html"], rules))
    assert f"at most {MAX_ROUTE_VALUES} KeyValueStore values of {KVS_VALUE_LIMIT} bytes" in err.value.message
    assert err.value.exit_code == 2


def test_big_shadow_lists_fall_back_to_the_path_shape_then_pretty_urls_are_dropped():
    pages = [f"blog/post-{i:04}.html" for i in range(600)]
    m = manifest(["index.html"] + pages, [Redirect("/blog/*", "/index.html", 200)])
    routes = compile_edge_routes(m)
    rec = record(m)
    assert rec["r"][0][4] is None and rec["p"] == []
    assert any("too many to ship" in n for n in routes.notes) and any("pretty URLs" in n for n in routes.notes)
    assert all(len(v.encode()) <= KVS_VALUE_LIMIT for v in routes.values)


@needs_node
def test_router_and_edge_agree_on_every_rule_kind(tmp_path):
    store = LocalStore(tmp_path / "store")
    build = make_build(tmp_path / "site", {**SITE, "forced.html": "<p>forced</p>", "LICENSE": "MIT",
                                           "caf\u00e9/index.html": "<p>menu</p>"})
    # Enough rules that the routes span several KeyValueStore values.
    extra = "".join(f"/legacy/section-{i}/* /archive/section-{i}/:splat 301\n" for i in range(40))
    (build / "_redirects").write_text(SITE["_redirects"] + extra)
    m = atomicsite.publish(build, store, settings=SETTINGS, source={}).plan.manifest
    kvs = edge_kvs(m)
    assert len([k for k in kvs if ":routes:" in k]) >= 2

    requests = ["/", "/home", "/tmp/a/b?x=1", "/see-other", "/moved/intro", "/perm", "/forced", "/docs?x=1", "/docs/",
                "/app/settings/2", "/kept", "/about", "/about-force", "/LICENSE", "/caf%C3%A9", "/caf%C3%A9/",
                "/legacy/section-7/a%20b.html?k=v", "/legacy/section-39", "/assets/a.css", "/index.html"]
    with serving(create_app(store, settings=SETTINGS)) as router_base, edge(tmp_path, store.root, kvs) as edge_base, \
            httpx.Client() as c:
        for path in requests:
            r, e = c.get(router_base + path), c.get(edge_base + path)
            assert (e.status_code, e.headers.get("location")) == (r.status_code, r.headers.get("location")), path
            assert e.content == r.content or r.status_code != 200, path
        # Where the edge differs on purpose: a 404 rule (CloudFront's custom error response serves one 404 page)
        assert c.get(router_base + "/fr/x.html").status_code == 404 and c.get(edge_base + "/fr/x.html").status_code == 403
