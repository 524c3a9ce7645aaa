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
    ("seg-00001.ts", "video/mp2t"),  # an HLS segment, not Qt Linguist (Debian's /etc/mime.types)
    ("live.m3u8", "application/vnd.apple.mpegurl"),
    ("model.glb", "model/gltf-binary"),
    ("a.jpeg", "image/jpeg"),
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
    # issue 12: only names with a real content hash may be immutable, and never pages
    ("summer-sale2024.html", False),
    ("summer-sale2024.css", False),  # a word and a year, not a hash
    ("index.9c4e1d7a.html", False),  # pages are fetched by a stable URL, whatever their name
    ("photo-00000001.jpg", False),  # only digits: a counter
    ("release-20241201.html", False),
    ("bundle-20240101.js", False),  # a date
    ("menu-cafe2024.css", False),  # hex letters, but a word and a year
    ("logo-SummerSale.svg", False),  # camel case, no digit
    ("main.6543a935.min.css", True),  # MkDocs Material: the hash before .min
    ("inter-latin-400-normal-C38fXH4l.woff2", True),
    ("main.min.3c4f8e2a1b9d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e.css", True),  # Hugo
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


def test_dotfiles_are_ignored_by_default_except_well_known(tmp_path):
    build = site(tmp_path, "spa")
    (build / ".env").write_text("SECRET=1")
    (build / ".git" / "objects").mkdir(parents=True)
    (build / ".git" / "config").write_text("[core]")
    (build / "assets" / ".cache").mkdir()
    (build / "assets" / ".cache" / "x").write_text("x")
    (build / ".htaccess").write_text("Deny from all")
    (build / ".well-known").mkdir()
    (build / ".well-known" / "security.txt").write_text("Contact: mailto:sec@example.com")
    (build / ".well-known" / ".hidden").write_text("x")  # a dotfile inside is still a dotfile
    ignored = []
    paths = {f.entry.path for f in scan(build, on_ignored=ignored.append)}
    assert ".well-known/security.txt" in paths
    assert not [p for p in paths if any(part.startswith(".") and part != ".well-known" for part in p.split("/"))]
    assert sorted(ignored) == [".env", ".git/", ".htaccess", ".well-known/.hidden", "assets/.cache/"]
    # a '!' glob lets a path back in whatever the order; without the default list, dotfiles are published
    assert ".htaccess" in {f.entry.path for f in scan(build, ignore=("!.htaccess", ".*"))}
    assert ".env" in {f.entry.path for f in scan(build, ignore=("*.swp",))}


def test_dry_run_lists_ignored_files(tmp_path, monkeypatch):
    import json as _json

    from typer.testing import CliRunner

    from atomicsite.cli import app

    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    build = site(tmp_path, "spa")
    (build / ".env").write_text("SECRET=1")
    (build / ".git").mkdir()
    (build / ".git" / "HEAD").write_text("ref")
    res = CliRunner().invoke(app, ["publish", str(build), "--target", str(tmp_path / "t"), "--dry-run", "--json"])
    doc = _json.loads(res.stdout)
    assert res.exit_code == 0 and doc["ignored"] == [".env", ".git/"]
    assert not any(a["path"].startswith(".") for a in doc["actions"])
    res = CliRunner().invoke(app, ["publish", str(build), "--target", str(tmp_path / "t"), "--dry-run"])
    assert "ignored (not published): .env, .git/" in res.stdout


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


def test_content_types_and_version_ids_ignore_the_hosts_mime_tables(tmp_path, monkeypatch):
    """The same build gets the same headers and version id whatever the machine's MIME tables say."""
    import mimetypes

    build = tmp_path / "b"
    build.mkdir()
    for name in ("index.html", "seg.ts", "app.3f9a1c2b.js", "photo.jpg", "data.yaml", "x.unknownext"):
        (build / name).write_bytes(name.encode())
    before = Manifest.build(f.entry for f in scan(build))
    assert before.by_path["seg.ts"].content_type == "video/mp2t"
    # a host whose tables disagree about everything (as Debian's do about .ts, and Windows' registry
    # about .js): neither the table nor the id may move
    monkeypatch.setattr(mimetypes, "guess_type", lambda *a, **k: ("text/x-host-says-so", None))
    mimetypes.init()
    monkeypatch.setitem(mimetypes.types_map, ".ts", "text/vnd.trolltech.linguist")
    monkeypatch.setitem(mimetypes.types_map, ".js", "text/plain")
    after = Manifest.build(f.entry for f in scan(build))
    assert after.version == before.version
    assert [(e.path, e.content_type) for e in after.files] == [(e.path, e.content_type) for e in before.files]


def test_hash_reads_to_the_end_when_the_size_it_was_told_is_wrong(tmp_path, monkeypatch):
    """A file that grows between fstat and read (a build still writing it) is hashed whole, not cut
    at the size fstat reported."""
    import hashlib
    import os

    from atomicsite import scan as scan_module

    data = os.urandom(300_000)
    path = tmp_path / "growing.bin"
    path.write_bytes(data)
    real = os.fstat

    class Shrunk:
        def __init__(self, st):
            self.st_size = st.st_size // 3

    monkeypatch.setattr(scan_module.os, "fstat", lambda fd: Shrunk(real(fd)))
    sha, md5, size = scan_module._digest(str(path), *scan_module._open(str(path)), md5=True)
    assert (sha, md5, size) == (hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))


def test_large_files_hashed_by_workers_land_in_order_with_the_digests_inline_hashing_gives(tmp_path):
    from atomicsite import scan as scan_module

    sizes = [10, scan_module._BIG, 3, scan_module._BIG + 1, 0, 2 * scan_module._BIG, 7]
    for i, n in enumerate(sizes):
        (tmp_path / f"f{i}.bin").write_bytes(os.urandom(n))
    threaded = scan(tmp_path, workers=2)
    inline = scan(tmp_path, workers=0)
    assert [f.entry for f in threaded] == [f.entry for f in inline]
    for f in threaded:
        data = (tmp_path / f.entry.path).read_bytes()
        assert (f.entry.sha256, f.entry.md5, f.entry.size) == (
            hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), len(data))


def test_a_scan_without_md5_leaves_it_empty_and_changes_no_id(tmp_path):
    (tmp_path / "index.html").write_text("<p>hi")
    (tmp_path / "big.bin").write_bytes(os.urandom(300_000))
    with_md5, without = scan(tmp_path), scan(tmp_path, md5=False)
    assert all(f.entry.md5 for f in with_md5) and not any(f.entry.md5 for f in without)
    assert version_id(f.entry for f in with_md5) == version_id(f.entry for f in without)


def test_an_unreadable_large_file_is_one_line_naming_it(tmp_path, monkeypatch):
    from atomicsite import scan as scan_module

    (tmp_path / "big.bin").write_bytes(b"x" * scan_module._BIG)
    real_open = os.open
    opened = []

    def open_once(path, *a, **kw):  # the scan's own open works; the worker's fails
        if str(path).endswith("big.bin"):
            opened.append(path)
            if len(opened) > 1:
                raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    monkeypatch.setattr(scan_module.os, "open", open_once)
    with pytest.raises(BuildDirError, match="big.bin: cannot read it .permission denied"):
        scan(tmp_path, workers=2)
