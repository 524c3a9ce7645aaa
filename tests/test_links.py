"""The broken-reference gate (atomicsite.links): extraction, resolution, levels, and the publish it refuses."""

import json
import shutil

import pytest

from atomicsite.config import load_settings
from atomicsite.errors import EXIT_BROKEN_REFERENCES, ConfigError
from atomicsite.links import (BrokenReferences, LinkSettings, check_links, css_references, html_references,
                              resolve_reference, srcset_urls)
from atomicsite.scan import scan

from .helpers import FIXTURES, publish, site

GENERATORS = ["hugo", "mkdocs", "docusaurus", "vite"]
# Files of each generator fixture that no page or stylesheet references (feeds, sitemaps, search data
# that only JSON or JS names): every other file must be reported missing when it is taken away.
UNREFERENCED = {
    "hugo": {"sitemap.xml", "404.html"},
    "mkdocs": {"sitemap.xml", "404.html", "search/search_index.json", "assets/javascripts/workers/search.b8dbb3d2.min.js"},
    "docusaurus": {"sitemap.xml", "404.html"},
    "vite": set(),
}


# ---- extraction and resolution -------------------------------------------------------------------

@pytest.mark.parametrize("ref, base, target", [
    ("a.css", "/docs/page.html", "docs/a.css"),
    ("../img/x.png?v=3#frag", "/docs/sub/page.html", "docs/img/x.png"),
    ("/about", "/deep/er/page.html", "about"),
    ("..", "/a/b/c.html", "a/"),
    ("./", "/a/b.html", "a/"),
    ("../../../../x.css", "/a/b.html", "x.css"),  # '..' stops at the root, as in a browser
    ("with%20space/p%C3%A9.html", "/", "with space/pé.html"),
    ("https://example.com/x.js", "/", None),
    ("//cdn.example.com/x.js", "/", None),
    ("data:image/png;base64,AAAA", "/", None),
    ("mailto:a@example.com", "/", None),
    ("javascript:void(0)", "/", None),
    ("#top", "/", None),
    ("?page=2", "/", None),
    ("\\\\cdn.example.com\\x.js", "/", None),  # browsers read backslashes as slashes
    ("assets\\app.js", "/a/b.html", "a/assets/app.js"),
    ("/ass\nets/app.js", "/", "assets/app.js"),  # and drop tabs and newlines inside a URL
])
def test_resolve_reference(ref, base, target):
    assert resolve_reference(ref, base) == target


def test_srcset_candidates():
    assert srcset_urls("a.png 1x, b.png 2x") == ["a.png", "b.png"]
    assert srcset_urls(" /x-480.webp 480w,/x-960.webp   960w ") == ["/x-480.webp", "/x-960.webp"]
    assert srcset_urls("a.png 1x,b.png 2x") == ["a.png", "b.png"]
    assert srcset_urls("a.png, b.png") == ["a.png", "b.png"]  # a trailing comma ends a URL
    assert srcset_urls("img,v=2.png 1x") == ["img,v=2.png"]  # a comma inside a URL is part of it


def test_css_references_skip_comments_and_strings():
    css = ('@import "base.css"; @import url(\'print.css\') print; a{b:url( "s p.png" )}'
           '/* url(commented.png) */ .q{content:"url(not-a-ref.png)"} c{d:URL(up.png)} e{f:url(data:x)}')
    assert css_references(css) == ["base.css", "print.css", "s p.png", "up.png", "data:x"]


def test_html_references_kinds_and_base():
    html = b"""<base href="/app/"><link rel="stylesheet" href="s.css"><link rel="canonical" href="/c">
    <link rel="preconnect" href="https://x"><script src="m.js"></script><a href="p">p</a>
    <img srcset="a.png 1x, b.png 2x" style="background:url(bg.png)"><video poster="v.jpg"></video>
    <iframe src="frame.html"></iframe><style>x{y:url(st.png)}</style>"""
    base, refs = html_references(html)
    assert base == "/app/"
    assert sorted(refs) == sorted([
        ("resource", "s.css"), ("page", "/c"), ("resource", "m.js"), ("page", "p"), ("resource", "a.png"),
        ("resource", "b.png"), ("resource", "bg.png"), ("resource", "v.jpg"), ("page", "frame.html"),
        ("resource", "st.png"),
    ])


# ---- the fixture site with a broken chunk, a renamed stylesheet and a dead page link --------------

def test_broken_fixture_findings():
    report = check_links(scan(FIXTURES / "broken-refs"))
    found = [(f.page, f.ref, f.kind, f.level) for f in report.findings]
    assert found == [
        ("index.html", "/assets/chunk-Q7wE2rT9.js", "resource", "error"),  # the missing chunk
        ("index.html", "/assets/style.4e5f6a7b.css", "resource", "error"),  # the renamed stylesheet
        ("index.html", "/pricing", "page", "warn"),  # the dead page link
    ]
    assert report.refused and report.documents == 3 and report.references >= 10


def test_broken_fixture_refuses_publish_and_uploads_nothing(rig):
    with pytest.raises(BrokenReferences) as caught:
        publish(FIXTURES / "broken-refs", rig.store)
    err = caught.value
    assert err.exit_code == EXIT_BROKEN_REFERENCES == 8
    assert "index.html → /assets/chunk-Q7wE2rT9.js" in str(err) and "\n" not in str(err)
    assert [f.ref for f in err.report.errors] == ["/assets/chunk-Q7wE2rT9.js", "/assets/style.4e5f6a7b.css"]
    assert list(rig.store.list("")) == []  # nothing uploaded, no manifest, no pointer


def test_levels_turn_the_gate_down(rig, tmp_path):
    from dataclasses import replace

    from .helpers import SETTINGS
    import atomicsite

    settings = replace(SETTINGS, links=LinkSettings(resources="warn", pages="off"))
    result = atomicsite.publish(FIXTURES / "broken-refs", rig.store, settings=settings, source={})
    assert result.switched
    assert [(f.ref, f.level) for f in result.links.findings] == [
        ("/assets/chunk-Q7wE2rT9.js", "warn"), ("/assets/style.4e5f6a7b.css", "warn")]
    assert result.to_dict()["links"]["warnings"] == 2


def test_page_links_can_refuse_and_ignore_globs_apply():
    files = scan(FIXTURES / "broken-refs")
    strict = check_links(files, LinkSettings(pages="error"))
    assert [f.ref for f in strict.errors] == ["/assets/chunk-Q7wE2rT9.js", "/assets/style.4e5f6a7b.css", "/pricing"]
    ignored = check_links(files, LinkSettings(pages="error", ignore=("/pricing", "chunk-*.js", "/assets/style.*")))
    assert ignored.findings == ()


def test_base_href_is_respected(tmp_path):
    build = tmp_path / "b"
    (build / "app" / "assets").mkdir(parents=True)
    (build / "app" / "assets" / "x.js").write_text("1")
    (build / "index.html").write_text('<base href="/app/"><script src="assets/x.js"></script>')
    assert check_links(scan(build)).findings == ()
    (build / "index.html").write_text('<script src="assets/x.js"></script>')  # without <base>: /assets/x.js
    assert [f.target for f in check_links(scan(build)).findings] == ["assets/x.js"]
    # a <base> on another origin sends every relative reference there: not ours to check
    (build / "index.html").write_text('<base href="https://cdn.example.com/"><script src="gone.js"></script>')
    assert check_links(scan(build)).findings == ()


def test_clean_urls_follow_the_router(tmp_path):
    build = tmp_path / "b"
    (build / "docs" / "intro").mkdir(parents=True)
    (build / "docs" / "intro" / "index.html").write_text("intro")
    (build / "about.html").write_text("about")
    (build / "index.html").write_text(
        '<a href="/about">a</a><a href="about">b</a><a href="/docs/intro">c</a><a href="/docs/intro/">d</a>'
        '<a href="/docs/">e</a><a href="/_atomicsite/channels/live.json">f</a>')
    findings = check_links(scan(build), LinkSettings(pages="error")).findings
    assert [f.ref for f in findings] == ["/_atomicsite/channels/live.json", "/docs/"]


def test_stylesheet_urls_resolve_against_the_stylesheet(tmp_path):
    build = tmp_path / "b"
    (build / "css").mkdir(parents=True)
    (build / "fonts").mkdir()
    (build / "fonts" / "a.woff2").write_bytes(b"x")
    (build / "css" / "site.css").write_text('@font-face{src:url("../fonts/a.woff2?v=1#x")}'
                                           'b{background:url(img/missing.png)}')
    findings = check_links(scan(build)).findings
    assert [(f.page, f.target, f.level) for f in findings] == [("css/site.css", "css/img/missing.png", "error")]


# ---- real generator output passes without false positives, and every reference is really checked --

@pytest.mark.parametrize("name", GENERATORS)
def test_generator_output_passes(name):
    report = check_links(scan(FIXTURES / "link-sites" / name), LinkSettings(pages="error"))
    assert report.findings == (), [str(f) for f in report.findings]
    assert report.references >= 30


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_output_every_referenced_file_is_checked(name, tmp_path):
    """Take each file away in turn: the gate must notice every one that the site references."""
    src = FIXTURES / "link-sites" / name
    all_files = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
    noticed = set()
    for rel in all_files:
        build = tmp_path / rel.replace("/", "_")
        shutil.copytree(src, build)
        (build / rel).unlink()
        if any(f.target == rel or f.target + "index.html" == rel or f.target + "/index.html" == rel
               for f in check_links(scan(build), LinkSettings(pages="error")).findings):
            noticed.add(rel)
        shutil.rmtree(build)
    assert set(all_files) - noticed == UNREFERENCED[name]


def test_synthetic_site_has_references_that_all_resolve(tmp_path):
    from fixtures.synthetic import generate_site

    build = generate_site(tmp_path / "s", files=300)
    report = check_links(scan(build), LinkSettings(pages="error"))
    assert report.findings == () and report.references > 300 * 0.45 * 5
    victim = next(p for p in sorted(build.rglob("*.css")))
    victim.unlink()
    assert check_links(scan(build)).refused


# ---- config and CLI --------------------------------------------------------------------------------

def test_links_config_is_validated_naming_the_key(tmp_path):
    (tmp_path / "atomicsite.toml").write_text('[links]\nresources = "warn"\npages = "off"\nignore = ["/api/*"]\n')
    assert load_settings(cwd=tmp_path, env={}).links == LinkSettings("warn", "off", ("/api/*",))
    for body, key in [('[links]\nresources = "loud"\n', "links.resources"), ('[links]\npages = 1\n', "links.pages"),
                      ('[links]\nignore = "x"\n', "links.ignore"), ('[links]\nlevel = "off"\n', "links: unknown key 'level'")]:
        (tmp_path / "atomicsite.toml").write_text(body)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(cwd=tmp_path, env={})


def test_cli_refuses_with_exit_8_and_lists_findings(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from atomicsite.cli import app

    monkeypatch.chdir(tmp_path)
    for key in [k for k in __import__("os").environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    runner = CliRunner()
    build = site(tmp_path, "broken-refs")
    res = runner.invoke(app, ["publish", str(build), "--target", str(tmp_path / "t")])
    assert res.exit_code == 8 and "Traceback" not in res.output
    assert "error:" in res.stderr and "chunk-Q7wE2rT9.js" in res.stderr and len(res.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "t" / "v").exists()
    res = runner.invoke(app, ["publish", str(build), "--target", str(tmp_path / "t"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 8 and doc["error"] == "broken_references" and doc["links"]["errors"] == 2
    assert [(f["page"], f["ref"]) for f in doc["links"]["findings"]][-1] == ("index.html", "/pricing")
    res = runner.invoke(app, ["publish", str(build), "--target", str(tmp_path / "t"), "--dry-run", "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["links"]["refused"] and len(doc["links"]["findings"]) == 3
    res = runner.invoke(app, ["publish", str(build), "--target", str(tmp_path / "t"), "--dry-run"])
    assert res.exit_code == 0
    assert "index.html → /pricing" in res.stdout and "would refuse" in res.stdout


def test_github_action_summary_names_the_broken_references(tmp_path):
    """The action's job summary for a refused build lists page → reference from the CLI's JSON."""
    import os

    from atomicsite import github_action as ga

    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMICSITE_")}
    run = ga.run_cli(["publish", str(FIXTURES / "broken-refs"), "--target", str(tmp_path / "t"), "--json"], env)
    assert run.code == 8
    outputs = ga.step_outputs("publish", "live", run)
    text = ga.summary_markdown("publish", str(tmp_path / "t"), outputs, run, ga.GitHubContext())
    assert "failed (exit 8: broken references)" in text
    assert "- error: `index.html` → `/assets/chunk-Q7wE2rT9.js`" in text
    assert "- warn: `index.html` → `/pricing`" in text


def test_odd_names_resolve_as_a_browser_percent_decodes_them(tmp_path):
    build = site(tmp_path, "odd-names")
    (build / "index.html").write_text(
        '<a href="with%20space/page%20one.html">a</a><img src="issue%2342.txt"><img src="100%25.txt">'
        '<img src="c++notes.txt"><img src="c%2B%2Bnotes.txt"><img src="%C3%BCn%C3%AFc%C3%B8d%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E.txt">'
        '<img src="ünïcødé/日本語.txt"><a href="with space/page one.html">b</a>'
        '<img src="issue#42.txt">', encoding="utf-8")  # an unescaped '#' starts a fragment: this names 'issue'
    report = check_links(scan(build), LinkSettings(pages="error"))
    assert [(f.ref, f.target) for f in report.findings] == [("issue#42.txt", "issue")]
    assert report.references == 9
