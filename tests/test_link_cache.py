"""The link gate's per-page cache (atomicsite.link_cache): an unchanged page is not read again, yet
every finding is what a full check finds, and a bad cache is ignored."""

from __future__ import annotations

import json

import pytest

from atomicsite import link_cache, links
from atomicsite.config import load_settings
from atomicsite.link_cache import LinkCache
from atomicsite.links import LinkSettings, check_links, gate
from atomicsite.routing.build import scan_site

from .helpers import site


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv("ATOMICSITE_CACHE_DIR", str(where))
    return where


@pytest.fixture
def reads(monkeypatch):
    """The documents the gate reads."""
    seen: list[str] = []
    real = links._read
    monkeypatch.setattr(links, "_read", lambda path: seen.append(path.name) or real(path))
    return seen


def _check(build, settings=None):
    files, rules = scan_site(build, load_settings(cwd=build))
    cache = LinkCache.for_build(build)
    report = gate(files, settings or LinkSettings(), rules=rules, cache=cache, dry_run=True)
    return report, check_links(files, settings or LinkSettings(), rules)  # with the cache, and without


def test_an_unchanged_page_is_not_read_again_and_counts_stay_exact(tmp_path, cache_dir, reads):
    build = site(tmp_path, "link-sites/hugo", dest="hugo")
    first, full = _check(build)
    assert first == full and first.documents > 3 and first.references > 10
    assert list(cache_dir.glob("links-*.json")), "the cache is written"
    reads.clear()
    second, full = _check(build)
    assert second == full
    assert len(reads) == second.documents, "only the check without a cache read the documents"
    page = next(p for p in build.rglob("*.html"))
    page.write_text(page.read_text() + "\n<!-- changed -->")
    reads.clear()
    third, full = _check(build)
    # the check without a cache reads every document; the cached one only the changed page
    assert third == full and reads.count(page.name) == 2 and len(reads) == third.documents + 1


def test_a_cached_page_still_fails_when_its_target_is_removed(tmp_path, cache_dir, reads):
    build = site(tmp_path, "link-sites/hugo", dest="hugo")
    assert not _check(build)[0].findings
    css = next(build.rglob("*.css"))
    css.unlink()
    reads.clear()
    cached, full = _check(build)
    assert cached.findings and cached == full  # the same findings, naming each reference as written
    assert all(f.target.endswith(css.name) for f in cached.errors)


def test_levels_and_ignore_apply_to_cached_pages(tmp_path, cache_dir):
    build = site(tmp_path, "link-sites/hugo", dest="hugo")
    _check(build)
    next(build.rglob("*.css")).unlink()
    for settings in (LinkSettings(resources="off"), LinkSettings(resources="warn", pages="off"),
                     LinkSettings(ignore=("*.css",))):
        cached, full = _check(build, settings)
        assert cached == full


@pytest.mark.parametrize("damage", ["garbage", "other key", "bad row", "index out of range"])
def test_a_bad_cache_is_ignored(tmp_path, cache_dir, reads, damage):
    build = site(tmp_path, "link-sites/hugo", dest="hugo")
    _check(build)
    path = next(cache_dir.glob("links-*.json"))
    raw = json.loads(path.read_text())
    if damage == "garbage":
        path.write_text("{not json")
    else:
        if damage == "other key":
            raw["key"] = "links/0 something else"
        elif damage == "bad row":
            raw["pages"] = {p: [1, 2] for p in raw["pages"]}
        else:
            raw["pages"] = {p: [row[0], len(raw["targets"]) + 5] for p, row in raw["pages"].items()}
        path.write_text(json.dumps(raw))
    reads.clear()
    cached, full = _check(build)
    assert cached == full and len(reads) == 2 * cached.documents  # everything read again, twice


def test_a_poisoned_entry_for_other_bytes_is_not_used(tmp_path, cache_dir, reads):
    """An entry is used only for the bytes it was made from (its sha256)."""
    build = site(tmp_path, "link-sites/hugo", dest="hugo")
    _check(build)
    page = next(p for p in build.rglob("*.html"))
    page.write_text(page.read_text().replace("</body>", '<img src="/missing.png"></body>'))
    cached, full = _check(build)
    assert cached == full and any(f.ref == "/missing.png" for f in cached.errors)


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ATOMICSITE_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # where it would go if it were on
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    build = site(tmp_path, "link-sites/hugo", dest="hugo")
    files, rules = scan_site(build, load_settings(cwd=build))
    gate(files, LinkSettings(), rules=rules, cache=LinkCache.for_build(build))
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_a_publish_with_the_gate_off_leaves_the_cache_as_it_was(tmp_path, cache_dir, local_rig):
    """Off, the gate uses no page; saving what it used would empty the cache for the next publish."""
    import atomicsite
    from atomicsite.config import Settings

    build = site(tmp_path, "link-sites/hugo", dest="hugo")
    atomicsite.publish(build, local_rig.store, settings=Settings(), source={})
    (path,) = cache_dir.glob("links-*.json")
    before = path.read_bytes()
    assert json.loads(before)["pages"]
    off = Settings(links=LinkSettings(resources="off", pages="off"))
    (build / "extra.txt").write_text("a new version")
    atomicsite.publish(build, local_rig.store, settings=off, source={})
    assert path.read_bytes() == before


def test_default_place_is_the_user_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("ATOMICSITE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert link_cache.cache_dir() == tmp_path / "xdg" / "atomicsite"
    a, b = LinkCache.for_build(tmp_path / "one"), LinkCache.for_build(tmp_path / "two")
    assert a.path.parent == b.path.parent == tmp_path / "xdg" / "atomicsite" and a.path != b.path


def test_the_target_table_is_compacted_once_it_has_grown_by_half(tmp_path, cache_dir):
    cache = LinkCache.for_build(tmp_path)
    for n in range(3000):  # pages come and go: 3000 targets, of which the last page uses 2
        cache.put(f"p{n}.html", "a" * 64, [(True, f"t{n}"), (False, f"t{n}-page")])
    cache._new = {"p2999.html": cache._new["p2999.html"]}
    cache.save()
    again = LinkCache.for_build(tmp_path)
    assert again.targets == ["t2999", "t2999-page"]
    row = again.get("p2999.html", "a" * 64)
    assert [again.targets[i if i >= 0 else ~i] for i in row[1:]] == ["t2999", "t2999-page"] and row[2] < 0
    # a little growth is written as it is (renumbering costs more than a few unused entries)
    again.put("new.html", "b" * 64, [(True, "t-new")])
    again.save()
    assert LinkCache.for_build(tmp_path).targets == ["t2999", "t2999-page", "t-new"]
