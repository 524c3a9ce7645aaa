"""Scanning a build dir, headers, version ids, manifests and config: pure units, no store."""

import hashlib
import json
import os
import unicodedata

import pytest

from atomicsite.config import Settings, load_settings, parse_duration
from atomicsite.errors import BuildDirError, ConfigError, IntegrityError
from atomicsite.headers import IMMUTABLE, REVALIDATE, HeaderRule, content_type_for, headers_for, is_fingerprinted
from atomicsite.manifest import FileEntry, Manifest, version_id
from atomicsite.scan import scan

from .helpers import FIXTURES, site


@pytest.mark.parametrize("name, ctype", [
    ("index.html", "text/html; charset=utf-8"),
    ("a/app.js", "text/javascript; charset=utf-8"),
    ("mod.mjs", "text/javascript; charset=utf-8"),
    ("x.wasm", "application/wasm"),
    ("site.webmanifest", "application/manifest+json; charset=utf-8"),
    ("pic.avif", "image/avif"),
    ("f.woff2", "font/woff2"),
    ("app.js.map", "application/json; charset=utf-8"),
    ("data.json", "application/json; charset=utf-8"),
    ("feed.xml", "application/xml; charset=utf-8"),
    ("robots.txt", "text/plain; charset=utf-8"),
    ("logo.svg", "image/svg+xml; charset=utf-8"),
    ("photo.JPG", "image/jpeg"),
    ("blob.unknownext", "application/octet-stream"),
])
def test_content_types(name, ctype):
    assert content_type_for(name) == ctype


@pytest.mark.parametrize("name, fingerprinted", [
    ("app.3f9a1c2b.js", True),
    ("index-BfK2x9Qa.css", True),
    ("assets/index-BfK2x9Qa.js.map", True),
    ("chunk.0123456789abcdef0123.js", True),
    ("index.html", False),
    ("about.html", False),
    ("my-component.css", False),  # a word, not a hash
    ("deadbeef.js", False),  # the hash is the whole name: no separator before it
    ("styles.abcdefgh.css", False),  # letters only: not a hash
    ("favicon.ico", False),
])
def test_fingerprint_detection(name, fingerprinted):
    assert is_fingerprinted(name) is fingerprinted
    assert headers_for(name).cache_control == (IMMUTABLE if fingerprinted else REVALIDATE)


def test_header_rules_first_match_wins_per_header():
    rules = (HeaderRule("*.html", cache_control="no-cache"), HeaderRule("blog/*", cache_control="max-age=5",
                                                                          content_type="text/x-blog"))
    h = headers_for("blog/post.html", rules)
    assert h.cache_control == "no-cache" and h.content_type == "text/x-blog"
    assert headers_for("post.html", rules) == headers_for("post.html", rules[:1])
    with pytest.raises(ConfigError, match="sets nothing"):
        HeaderRule("*.css")


def test_scan_fixture_blog():
    files = scan(FIXTURES / "blog")
    paths = [f.entry.path for f in files]
    assert paths == sorted(paths) and "posts/2024/hello-world/index.html" in paths and len(paths) == 10
    f = next(f for f in files if f.entry.path == "assets/main.3f9a1c2b.css")
    data = (FIXTURES / "blog/assets/main.3f9a1c2b.css").read_bytes()
    assert f.entry.sha256 == hashlib.sha256(data).hexdigest() and f.entry.size == len(data)
    assert f.entry.md5 == hashlib.md5(data).hexdigest()


def test_scan_ignores_defaults_and_configured(tmp_path):
    build = site(tmp_path, "spa")
    (build / ".git").mkdir()
    (build / ".git" / "HEAD").write_text("ref")
    (build / ".DS_Store").write_bytes(b"\0")
    (build / "notes.swp").write_text("x")
    paths = {f.entry.path for f in scan(build)}
    assert not any(p.startswith(".git") or p.endswith((".DS_Store", ".swp")) for p in paths)
    only = {f.entry.path for f in scan(build, ignore=("assets/*", ".*", "*.swp"))}
    assert only == {"404.html", "index.html"}


def test_symlinks_inside_are_followed_and_outside_refused(tmp_path):
    build = site(tmp_path, "spa")
    os.symlink("index.html", build / "alias.html")
    os.symlink("assets", build / "static")
    paths = {f.entry.path for f in scan(build)}
    assert "alias.html" in paths and "static/index-BfK2x9Qa.js" in paths
    os.symlink("/etc", build / "etc")
    with pytest.raises(BuildDirError, match="etc.*outside the build dir"):
        scan(build)


def test_symlink_loop_and_broken_link(tmp_path):
    build = site(tmp_path, "spa")
    os.symlink(".", build / "assets" / "loop")
    with pytest.raises(BuildDirError, match="loop"):
        scan(build)
    os.unlink(build / "assets" / "loop")
    os.symlink("missing.html", build / "broken.html")
    with pytest.raises(BuildDirError, match="broken"):
        scan(build)


def test_names_are_nfc_and_bad_names_are_refused(tmp_path):
    build = tmp_path / "b"
    build.mkdir()
    nfd = unicodedata.normalize("NFD", "café.html")
    (build / nfd).write_text("x")
    (files,) = scan(build)
    assert files.entry.path == unicodedata.normalize("NFC", "café.html")
    (build / "new\nline.txt").write_text("x")
    with pytest.raises(BuildDirError, match="new"):
        scan(build)


def test_two_names_that_normalise_alike_are_refused(tmp_path):
    build = tmp_path / "b"
    build.mkdir()
    (build / unicodedata.normalize("NFD", "é.txt")).write_text("1")
    (build / unicodedata.normalize("NFC", "é.txt")).write_text("2")
    with pytest.raises(BuildDirError, match="unicode normalisation"):
        scan(build)


def test_version_id_is_content_addressed():
    a = FileEntry("a.html", "1" * 64, 3, "m", "text/html", REVALIDATE)
    b = FileEntry("b.js", "2" * 64, 4, "m", "text/javascript", IMMUTABLE)
    assert version_id([a, b]) == version_id([b, a])
    assert len(version_id([a])) == 16
    changed = FileEntry("a.html", "1" * 64, 3, "m", "text/html", "no-cache")
    assert version_id([changed, b]) != version_id([a, b])  # headers are part of the identity
    m1 = Manifest.build([a, b], message="one")
    m2 = Manifest.build([b, a], message="two", source={"commit": "abc"})
    assert m1.version == m2.version


def test_manifest_round_trip_and_validation():
    m = Manifest.build(f.entry for f in scan(FIXTURES / "spa"))
    again = Manifest.from_json(m.to_json(), where="x", expect_version=m.version)
    assert again == m
    raw = m.to_dict()  # the content as format 1 stores it (tampering with format 3: tests/test_manifest_codec.py)
    raw["files"]["index.html"]["sha256"] = "0" * 64
    with pytest.raises(IntegrityError, match="does not hash to its version id"):
        Manifest.from_json(json.dumps(raw).encode(), where="x")
    for bad in (b"", b"[]", b'{"format": 9}', b"\xff\xfe"):
        with pytest.raises(IntegrityError):
            Manifest.from_json(bad, where="x")


def test_config_precedence_and_errors(tmp_path):
    (tmp_path / "atomicsite.toml").write_text(
        'target = "s3://file-bucket/site"\nconcurrency = 4\nregion = "eu-west-1"\n'
        '[prune]\nkeep = 3\ngrace = "2h"\n')
    s = load_settings(cwd=tmp_path, env={})
    assert (s.target, s.concurrency, s.store.region, s.prune.keep, s.prune.grace_seconds) == (
        "s3://file-bucket/site", 4, "eu-west-1", 3, 7200)
    s = load_settings(cwd=tmp_path, env={"ATOMICSITE_TARGET": "gs://env-bucket", "ATOMICSITE_CONCURRENCY": "9"})
    assert (s.target, s.concurrency, s.store.max_workers) == ("gs://env-bucket", 9, 9)
    s = s.with_overrides(target="/flag", concurrency=None)
    assert s.target == "/flag" and s.concurrency == 9
    with pytest.raises(ConfigError, match="ATOMICSITE_CONCURRENCY"):
        load_settings(cwd=tmp_path, env={"ATOMICSITE_CONCURRENCY": "lots"})
    (tmp_path / "atomicsite.toml").write_text('addressing_style = "sideways"\n')
    with pytest.raises(ConfigError, match="addressing_style"):
        load_settings(cwd=tmp_path, env={})
    (tmp_path / "atomicsite.toml").write_text("target = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cwd=tmp_path, env={})
    assert Settings().target_or_default == ".atomicsite/site"
    assert parse_duration("30d", where="x") == 30 * 86400 and parse_duration(90, where="x") == 90
    with pytest.raises(ConfigError):
        parse_duration("soon", where="--older-than")


def test_config_files_that_are_not_what_they_should_be(tmp_path):
    (tmp_path / "atomicsite.toml").write_bytes(b"target = \"\xff\xfe\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(cwd=tmp_path, env={})
    (tmp_path / "atomicsite.toml").unlink()
    (tmp_path / "pyproject.toml").write_text("tool = 1\n")
    assert load_settings(cwd=tmp_path, env={}).target is None
    (tmp_path / "pyproject.toml").write_text("[tool]\natomicsite = 3\n")
    with pytest.raises(ConfigError, match="must be a table"):
        load_settings(cwd=tmp_path, env={})
    (tmp_path / "pyproject.toml").write_text("[tool.atomicsite.prune]\nkeep = 1.5\n")
    with pytest.raises(ConfigError, match="whole number"):
        load_settings(cwd=tmp_path, env={})
