"""URL rules (atomicsite.routing): parsing _redirects/_headers and config tables, the routing order,
manifests carrying rules (and still reading older ones), publish refusing bad lines before any upload,
and the router applying every rule kind over real HTTP on every store."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

import atomicsite
from atomicsite.config import load_settings
from atomicsite.errors import ConfigError, IntegrityError, UsageError
from atomicsite.manifest import FORMAT, FORMAT_RULES, FileEntry, Manifest, version_id
from atomicsite.routing import (
    FILE, NOT_FOUND, REDIRECT, HeaderBlock, Redirect, RuleError, SiteRules, compile_pattern, headers_for_path,
    parse_headers, parse_redirects, route,
)
from atomicsite.routing.build import object_headers

from .helpers import SETTINGS
from .test_serve import make_build, router  # noqa: F401  (fixture)

# -- patterns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, path, captures", [
    ("/old", "/old", {}), ("/old", "/old/", {}), ("/old/", "/old", {}), ("/old", "/olde", None),
    ("/Old", "/old", None),  # case-sensitive, as on Netlify
    ("/news/*", "/news", {"splat": ""}), ("/news/*", "/news/a/b.html", {"splat": "a/b.html"}),
    ("/news/*", "/newsy", None), ("/*", "/", {"splat": ""}), ("/*", "/x/y", {"splat": "x/y"}),
    ("/blog/:year/:slug", "/blog/2024/hi", {"year": "2024", "slug": "hi"}), ("/blog/:year/:slug", "/blog/2024", None),
    ("/blog/:year/*", "/blog/2024/a/b", {"year": "2024", "splat": "a/b"}),
    ("/caf%C3%A9", "/café", {}),  # rules are written percent-encoded, matched decoded
    ("/a.b", "/aXb", None),  # literal dots
])
def test_patterns(pattern, path, captures):
    assert compile_pattern(pattern).match(path) == captures


# -- parsing --------------------------------------------------------------------------------------------

REDIRECTS = """\
# comments and blank lines are skipped

/home              /                     301
/old/*             /new/:splat           302
/blog/:year/:slug  /posts/:year-:slug    308!
/app/*             /app/index.html       200
/fr/*              /fr/404.html          404
/gone              https://example.com/x
"""


def test_parse_redirects():
    rules = parse_redirects(REDIRECTS, "dist/_redirects")
    assert rules == (
        Redirect("/home", "/", 301), Redirect("/old/*", "/new/:splat", 302),
        Redirect("/blog/:year/:slug", "/posts/:year-:slug", 308, force=True), Redirect("/app/*", "/app/index.html", 200),
        Redirect("/fr/*", "/fr/404.html", 404), Redirect("/gone", "https://example.com/x", 301),
    )


@pytest.mark.parametrize("line, message", [
    ("/a", "has no destination"),
    ("/a /b 418", "status 418 is not supported"),
    ("/a /b 30x", "is not a status code"),
    ("/store id=:id /blog/:id 301", "query-parameter conditions"),
    ("/ /anz 302 Country=au,nz", "conditions (Country=au,nz) are not supported"),
    ("/admin/* /admin 200! Role=admin", "conditions (Role=admin)"),
    ("http://blog.example.com/* https://example.com/blog/:splat 301", "host (domain-level) rules"),
    ("/api/* https://api.example.com/:splat 200", "would be a proxy"),
    ("/a/*/b /c", "'*' is allowed only as the whole last segment"),
    ("/a /b/:slug", "uses :slug, which the from path"),
    ("old /new", "does not start with '/'"),
    ("/a b", "neither a site path"),
])
def test_bad_redirect_lines_name_the_file_and_line(line, message):
    with pytest.raises(RuleError) as err:
        parse_redirects(f"# ok\n/fine /x\n{line}\n", "dist/_redirects")
    assert err.value.message.startswith("dist/_redirects:3: ")
    assert message in err.value.message
    assert err.value.exit_code == 2


HEADERS = """\
/*
  X-Frame-Options: DENY
  Strict-Transport-Security: max-age=63072000; includeSubDomains
# a comment
/assets/*
  Cache-Control: public, max-age=31536000, immutable
  Access-Control-Allow-Origin: *
/api/*
  Link: </a.css>; rel=preload
  Link: </b.js>; rel=preload
/embed/*
  X-Frame-Options: SAMEORIGIN
"""


def test_parse_headers_and_merge_per_path():
    blocks = parse_headers(HEADERS, "dist/_headers")
    assert blocks[2] == HeaderBlock("/api/*", (("Link", "</a.css>; rel=preload, </b.js>; rel=preload"),))
    found = headers_for_path(blocks, "/embed/x.html")
    assert found["x-frame-options"] == ("X-Frame-Options", "SAMEORIGIN")  # a later block replaces
    assert "strict-transport-security" in found and "access-control-allow-origin" not in found
    assert headers_for_path(blocks, "/assets/a.css")["access-control-allow-origin"][1] == "*"


@pytest.mark.parametrize("text, message", [
    ("  X-Frame-Options: DENY\n", ":1: a header line before any path"),
    ("/*\n  Basic-Auth: me:secret\n", ":2: Basic-Auth cannot be set by a rule"),
    ("/*\n  Content-Length: 5\n", ":2: Content-Length cannot be set"),
    ("/*\n  Bad Name: x\n", ":2: 'Bad Name' is not a header name"),
    ("/*\n  X-Empty:\n", ":2: header X-Empty has an empty value"),
    ("/*\n/a\n  X-A: b\n", ":1: path /* has no headers under it"),
    ("/a/*/b\n  X-A: b\n", ":1: "),
])
def test_bad_header_lines_name_the_file_and_line(text, message):
    with pytest.raises(RuleError) as err:
        parse_headers(text, "dist/_headers")
    assert err.value.message.startswith("dist/_headers:") and message in err.value.message


def test_config_tables(tmp_path):
    (tmp_path / "atomicsite.toml").write_text("""
[[headers]]
match = "*.html"
cache_control = "no-cache"

[[headers]]
for = "/*"
[headers.values]
X-Frame-Options = "DENY"
Content-Security-Policy = "default-src 'self'"

[[redirects]]
from = "/old/*"
to = "/new/:splat"
status = 302

[[redirects]]
from = "/spa/*"
to = "/spa/index.html"
status = 200
force = true
""")
    s = load_settings(cwd=tmp_path, env={})
    assert s.rules[0].glob == "*.html"
    assert s.response_headers == (HeaderBlock("/*", (("X-Frame-Options", "DENY"),
                                                     ("Content-Security-Policy", "default-src 'self'"))),)
    assert s.redirects == (Redirect("/old/*", "/new/:splat", 302), Redirect("/spa/*", "/spa/index.html", 200, True))


@pytest.mark.parametrize("toml, message", [
    ('[[redirects]]\nfrom = "/a"\nto = "/b"\nstatus = 418', "redirects[0]: status 418"),
    ('[[redirects]]\nfrom = "/a"\nto = "/b"\nquery = {id = ":id"}', "redirects[0]: unknown key 'query'"),
    ('[[redirects]]\nfrom = "/a"\nto = "/b"\nforce = "yes"', "redirects[0].force"),
    ('[[headers]]\nfor = "/*"\nvalues = {Basic-Auth = "a:b"}', "headers[0].values: Basic-Auth cannot be set"),
    ('[[headers]]\nfor = "/*"\nmatch = "*.html"\nvalues = {X-A = "b"}', "headers[0]: unknown key 'match'"),
    ('redirects = "nope"', "redirects: must be a list"),
])
def test_config_errors_name_the_key(tmp_path, toml, message):
    (tmp_path / "atomicsite.toml").write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(cwd=tmp_path, env={})
    assert message in err.value.message


# -- routing order -----------------------------------------------------------------------------------

FILES = {"index.html", "about.html", "docs/index.html", "docs/a.html", "app/index.html", "fr/404.html", "old.html",
         "LICENSE"}


@pytest.mark.parametrize("rules, rel, query, expected", [
    ((), "", "", (FILE, "index.html", 200, None)),
    ((), "about", "", (FILE, "about.html", 200, None)),  # pretty URL kept
    ((), "docs", "a=1&b=%2F", (REDIRECT, None, 301, "/docs/?a=1&b=%2F")),
    ((), "docs/", "", (FILE, "docs/index.html", 200, None)),
    ((), "LICENSE", "", (FILE, "LICENSE", 200, None)),
    ((), "missing", "", (NOT_FOUND, None, 404, None)),
    ((Redirect("/old", "/new"),), "old", "", (FILE, "old.html", 200, None)),  # shadowed by old.html
    ((Redirect("/old", "/new", force=True),), "old", "x=1", (REDIRECT, None, 301, "/new?x=1")),
    ((Redirect("/docs", "/manual/"),), "docs", "", (REDIRECT, None, 301, "/docs/")),  # a directory shadows too
    ((Redirect("/x/*", "/y/:splat", 307),), "x/a b/c", "", (REDIRECT, None, 307, "/y/a%20b/c")),
    ((Redirect("/x/*", "/y?k=v", 302),), "x/1", "q=2", (REDIRECT, None, 302, "/y?k=v")),  # its own query wins
    ((Redirect("/app/*", "/app/index.html", 200),), "app/settings/1", "", (FILE, "app/index.html", 200, None)),
    ((Redirect("/app/*", "/app/", 200),), "app/settings", "", (FILE, "app/index.html", 200, None)),
    ((Redirect("/fr/*", "/fr/404.html", 404),), "fr/nope", "", (FILE, "fr/404.html", 404, None)),
    ((Redirect("/m/*", "/missing.html", 200), Redirect("/m/*", "/about", 200)), "m/x", "", (FILE, "about.html", 200, None)),
    ((Redirect("/a", "/b"), Redirect("/a", "/c")), "a", "", (REDIRECT, None, 301, "/b")),  # first match wins
    ((Redirect("/w/*", "/star", 302), Redirect("/w/lit", "/lit")), "w/lit/", "", (REDIRECT, None, 302, "/star")),
    ((Redirect("/w/lit", "/lit"), Redirect("/w/*", "/star", 302)), "w/lit", "", (REDIRECT, None, 301, "/lit")),
    ((Redirect("/w/lit", "/gone.html", 200), Redirect("/w/*", "/about", 200)), "w/lit", "", (FILE, "about.html", 200, None)),
    ((Redirect("/ext", "https://example.com/:splat".replace(":splat", "x"), 308),), "ext", "", (REDIRECT, None, 308, "https://example.com/x")),
])
def test_route(rules, rel, query, expected):
    r = route(FILES, SiteRules(redirects=tuple(rules)), rel, query)
    assert (r.kind, r.path, r.status, r.location) == expected


# -- manifests ----------------------------------------------------------------------------------------

ENTRY = FileEntry("index.html", "a" * 64, 3, "b" * 32, "text/html; charset=utf-8", "public, max-age=0, must-revalidate")
# A format-1 manifest exactly as atomicsite wrote it before rules existed.
OLD = (b'{"created":"2026-01-01T00:00:00.000Z","files":{"index.html":{"cache_control":"public, max-age=0, '
       b'must-revalidate","content_type":"text/html; charset=utf-8","md5":"' + b"b" * 32 + b'","sha256":"'
       + b"a" * 64 + b'","size":3}},"format":1,"message":null,"source":{},"tool":"atomicsite 0.1.0","version":"VID"}')


def test_manifests_without_rules_keep_their_format_and_id():
    old = OLD.replace(b"VID", version_id([ENTRY]).encode())
    m = Manifest.from_json(old, where="test")
    assert m.format == FORMAT and not m.rules and m.version == version_id([ENTRY])
    again = Manifest.build([ENTRY])
    assert again.version == m.version and again.to_dict()["format"] == 1 and "rules" not in again.to_dict()


def test_rules_are_part_of_the_version_and_round_trip():
    rules = SiteRules((Redirect("/a", "/b", 302),), (HeaderBlock("/*", (("X-Frame-Options", "DENY"),)),))
    plain, ruled = Manifest.build([ENTRY]), Manifest.build([ENTRY], rules=rules)
    assert plain.version != ruled.version
    assert Manifest.build([ENTRY], rules=SiteRules((Redirect("/a", "/b", 301),))).version != ruled.version
    data = ruled.to_dict()
    assert data["format"] == FORMAT_RULES and data["rules"]["redirects"][0] == {"from": "/a", "to": "/b", "status": 302,
                                                                                 "force": False}
    back = Manifest.from_json(ruled.to_json(), where="test")
    assert back.rules == rules and back.version == ruled.version

    data["rules"]["redirects"][0]["status"] = 301  # tampered: no longer hashes to its id
    with pytest.raises(IntegrityError, match="does not hash"):
        Manifest.from_json(json.dumps(data).encode(), where="test")
    data["rules"]["redirects"][0]["status"] = 418
    with pytest.raises(IntegrityError, match="bad rules"):
        Manifest.from_json(json.dumps(data).encode(), where="test")
    data["format"] = 9
    with pytest.raises(IntegrityError, match="unknown format 9"):
        Manifest.from_json(json.dumps(data).encode(), where="test")


# -- publish -------------------------------------------------------------------------------------------

def test_bad_rule_line_stops_publish_before_any_upload(rig, tmp_path):
    build = make_build(tmp_path / "b", {"index.html": "hi", "_redirects": "/a /b\n/c /d 999\n"})
    with pytest.raises(UsageError, match=r"_redirects:2: status 999"):
        atomicsite.publish(build, rig.store, settings=SETTINGS, source={})
    assert list(rig.store.list("")) == []


def test_rule_files_are_not_published_and_headers_reach_object_metadata(rig, tmp_path):
    build = make_build(tmp_path / "b", {
        "index.html": "<p>hi</p>", "docs/index.html": "d", "docs/_redirects": "kept: only the root one is rules",
        "_redirects": "/old /docs/ 301\n", "a.css": "x",
        "_headers": "/*\n  X-Frame-Options: DENY\n/docs/\n  Cache-Control: no-cache\n/a.css\n  Content-Type: text/x-css\n",
    })
    result = atomicsite.publish(build, rig.store, settings=SETTINGS, source={})
    m = result.plan.manifest
    assert sorted(m.by_path) == ["a.css", "docs/_redirects", "docs/index.html", "index.html"]
    assert m.rules.redirects == (Redirect("/old", "/docs/"),)
    assert m.by_path["docs/index.html"].cache_control == "no-cache"  # matched by its URL /docs/
    assert m.by_path["index.html"].cache_control == "public, max-age=0, must-revalidate"
    assert m.by_path["a.css"].content_type == "text/x-css"
    if rig.keeps_headers:
        info = rig.store.head(f"v/{m.version}/docs/index.html")
        assert info.cache_control == "no-cache"


def test_config_match_rules_win_over_headers_file(tmp_path):
    from atomicsite.headers import HeaderRule
    from atomicsite.routing.build import with_object_headers

    blocks = parse_headers("/*\n  Cache-Control: no-store\n  Content-Type: text/plain\n", "_headers")
    assert object_headers(blocks, "x/index.html") == {"cache-control": "no-store", "content-type": "text/plain"}
    scanned = replace(ENTRY, cache_control="max-age=60")  # what scan gave it from the match rule
    e = with_object_headers(scanned, blocks, (HeaderRule("*.html", cache_control="max-age=60"),))
    assert (e.cache_control, e.content_type) == ("max-age=60", "text/plain")
    e = with_object_headers(scanned, blocks, ())
    assert (e.cache_control, e.content_type) == ("no-store", "text/plain")


# -- the router, every rule kind, over real HTTP ---------------------------------------------------

SITE = {
    "index.html": "<p>home</p>", "about.html": "<p>about</p>", "docs/index.html": "<p>docs</p>",
    "app/index.html": "<p>app shell</p>", "fr/404.html": "<p>introuvable</p>", "404.html": "<p>lost</p>",
    "assets/a.css": "body{}", "kept.html": "<p>kept</p>",
    "_redirects": """
/home          /                     301
/tmp/*         /docs/:splat          302
/see-other     /docs/                303
/moved/:name   /docs/:name.html      307
/perm          https://example.com/p 308
/app/*         /app/index.html       200
/fr/*          /fr/404.html          404
/kept          /docs/                301
/forced        /docs/                301!
/about         /nope                 301
/about-force   /about                200
""",
    "_headers": "/*\n  X-Frame-Options: DENY\n/assets/*\n  Access-Control-Allow-Origin: *\n"
                "/app/*\n  Content-Security-Policy: default-src 'self'\n",
}


def test_router_applies_every_rule_kind(rig, router, tmp_path):  # noqa: F811  (the fixture)
    build = make_build(tmp_path / "site", SITE)
    (build / "forced.html").write_text("<p>shadowed unless forced</p>")
    version = atomicsite.publish(build, rig.store, settings=SETTINGS, source={}).version
    base = router(rig.store)
    with httpx.Client(base_url=base) as c:
        def redirect(path, status, location):
            r = c.get(path)
            assert (r.status_code, r.headers.get("location")) == (status, location), path
            assert r.headers["x-atomicsite-version"] == version

        redirect("/home", 301, "/")
        redirect("/tmp/a/b?x=1", 302, "/docs/a/b?x=1")
        redirect("/see-other", 303, "/docs/")
        redirect("/moved/intro", 307, "/docs/intro.html")
        redirect("/perm", 308, "https://example.com/p")
        redirect("/forced", 301, "/docs/")  # forced over forced.html
        redirect("/docs?x=1", 301, "/docs/?x=1")  # directory redirect
        assert c.head("/home").status_code == 301

        for path, status, body in [("/app/settings/2", 200, "app shell"), ("/fr/page", 404, "introuvable"),
                                   ("/kept", 200, "kept"), ("/about", 200, "about"), ("/about-force", 200, "about"),
                                   ("/nothing", 404, "lost")]:
            r = c.get(path)
            assert (r.status_code, body in r.text) == (status, True), path
        for path in ["/_redirects", "/_headers"]:
            assert c.get(path).status_code == 404  # rules, not content

        r = c.get("/app/x")
        assert r.headers["content-security-policy"] == "default-src 'self'" and r.headers["x-frame-options"] == "DENY"
        r = c.get("/assets/a.css")
        assert r.headers["access-control-allow-origin"] == "*" and "content-security-policy" not in r.headers
        assert c.get("/home").headers["x-frame-options"] == "DENY"  # redirects carry the path's headers too

        # a rollback rolls the rules back: publish a version without them, then roll back
        (build / "_redirects").write_text("/home /docs/ 302\n")
        atomicsite.publish(build, rig.store, settings=SETTINGS, source={})
        _wait_status(c, "/home", 302)
        atomicsite.rollback(rig.store, settings=SETTINGS)
        _wait_status(c, "/home", 301)


def _wait_status(client, path, status, timeout=5.0):
    import time

    deadline = time.monotonic() + timeout
    while client.get(path).status_code != status:
        assert time.monotonic() < deadline, f"{path} never answered {status}"
        time.sleep(0.02)


def test_router_under_a_root_path_prefixes_site_locations(tmp_path):
    from atomicsite.serve import create_app
    from atomicsite.stores.local import LocalStore

    from .test_serve import serving

    store = LocalStore(tmp_path / "s")
    atomicsite.publish(make_build(tmp_path / "b", {"index.html": "i", "docs/index.html": "d",
                                                   "_redirects": "/x /docs/ 302\n/y https://e.com/ 302\n"}),
                       store, settings=SETTINGS, source={})
    inner = create_app(store, settings=SETTINGS)

    async def mounted(scope, receive, send):
        if scope["type"] == "http":
            scope = {**scope, "root_path": "/site"}
        await inner(scope, receive, send)

    with serving(mounted) as base, httpx.Client(base_url=base) as c:
        assert c.get("/site/docs").headers["location"] == "/site/docs/"
        assert c.get("/site/x").headers["location"] == "/site/docs/"
        assert c.get("/site/y").headers["location"] == "https://e.com/"
