"""Precompressed variants (atomicsite.compress) end to end, on every store and both layouts: what is
stored (with which Content-Encoding), what the router sends for each Accept-Encoding over real HTTP
(bytes that decode to exactly the file's sha256), verify, failures mid-upload, and config errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.compress import CompressSettings, compress_bytes, decompress_bytes
from atomicsite.errors import IntegrityError
from atomicsite.layout import OBJECTS, content_key, has_link_trees, pool_key
from atomicsite.stores.local import LocalStore
from atomicsite.targets import read_manifest

from .helpers import SETTINGS, Crash, OpsStore
from .test_serve import make_build, router  # noqa: F401  (the router fixture)

pytest.importorskip("brotli")
pytestmark = pytest.mark.usefixtures("layout")

COMPRESS = replace(SETTINGS, compress=CompressSettings(("br", "gzip")))
PAGE = "".join(f"<p>paragraph {i}: the quick brown fox jumps over the lazy dog</p>\n" for i in range(200))
STYLE = "".join(f".c{i} {{ color: #{i:06x}; margin: {i}px; }}\n" for i in range(300))


def build_site(tmp_path: Path) -> Path:
    return make_build(tmp_path / "build", {
        "index.html": PAGE,
        "assets/app.css": STYLE,
        "tiny.txt": "too small to be worth it",  # under compress_min_size
        "photo.png": bytes(range(256)) * 20,  # not a compressible type
        "data.json": json.dumps({"k": list(range(800))}),
        "app.js": "console.log('x');\n" * 200,
        "app.js.gz": compress_bytes(b"the build's own file", "gzip"),  # wins over app.js's gzip variant
    })


def publish(build, store, settings=COMPRESS, **kw):
    return atomicsite.publish(build, store, settings=settings, source={}, **kw)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_variants_are_stored_with_their_content_encoding(rig, tmp_path, layout):
    build = build_site(tmp_path)
    result = publish(build, rig.store)
    m = read_manifest(rig.store, result.version)
    assert m.format == (5 if isinstance(rig.store, LocalStore) else 3) and m.to_dict()["format"] == 4  # no MD5s locally
    have = {f.path: [v.encoding for v in f.variants] for f in m.files}
    assert have == {"index.html": ["br", "gzip"], "assets/app.css": ["br", "gzip"], "data.json": ["br", "gzip"],
                    "app.js": ["br"], "tiny.txt": [], "photo.png": [], "app.js.gz": []}
    link_trees = has_link_trees(rig.store)
    for f in m.files:
        data = (build / f.path).read_bytes()
        for v in f.variants:
            stored_as = f.as_variant(v)
            key = content_key(m.version, m.layout, stored_as.path, stored_as.sha256, link_trees=link_trees)
            if m.layout == OBJECTS and not link_trees:
                assert key == pool_key(v.sha256)
            else:
                assert key.endswith(f"/{f.path}{'.br' if v.encoding == 'br' else '.gz'}")
            raw = b"".join(rig.store.open(key))
            assert sha(raw) == v.sha256 and len(raw) == v.size < f.size
            assert decompress_bytes(raw, v.encoding) == data
            assert compress_bytes(data, v.encoding) == raw  # deterministic: a re-run makes the same bytes
            if rig.keeps_headers:
                info = rig.store.head(key)
                assert info.extra_headers == {"content-encoding": v.encoding}
                assert info.content_type == f.content_type and info.cache_control == f.cache_control
    if rig.keeps_headers:  # identity objects carry no Content-Encoding, the build's own .gz neither
        own = content_key(m.version, m.layout, "app.js.gz", m.by_path["app.js.gz"].sha256, link_trees=link_trees)
        assert rig.store.head(own).extra_headers == {}
    assert atomicsite.verify(None, rig.store, settings=COMPRESS).variants == 7

    again = publish(build, rig.store)  # the same build and settings: nothing to do
    assert again.version == result.version and again.plan.committed


def test_off_by_default_nothing_changes(rig, tmp_path):
    build = build_site(tmp_path)
    plain = publish(build, rig.store, settings=SETTINGS)
    m = read_manifest(rig.store, plain.version)
    assert m.to_dict()["format"] in (1, 2) and not m.has_variants
    assert plain.plan.summary()["variants"] == {"files": 0, "bytes": 0}
    # compressing the same build is another version (its objects differ), reusing every file
    on = publish(build, rig.store)
    assert on.version != plain.version
    s = on.plan.summary()
    assert s["copy"]["files"] + s["skip"]["files"] >= 7 and s["variants"]["files"] == 7
    assert s["upload"]["files"] == 7  # only the variants are new bytes


def _raw(client: httpx.Client, method: str, path: str, **headers) -> tuple[httpx.Response, bytes]:
    with client.stream(method, path, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def test_router_negotiates_accept_encoding(rig, router, tmp_path):  # noqa: F811 (the fixture)
    build = build_site(tmp_path)
    version = publish(build, rig.store).version
    m = read_manifest(rig.store, version)
    page, css = m.by_path["index.html"], m.by_path["assets/app.css"]
    base = router(rig.store)
    cases = [  # Accept-Encoding → the coding sent (None: identity)
        (None, None), ("", None), ("identity", None), ("gzip", "gzip"), ("br", "br"),
        ("gzip, deflate, br", "br"), ("br;q=0.5, gzip", "gzip"), ("*", "br"), ("*;q=0", None),
        ("br;q=0, *", "gzip"), ("gzip;q=0.5, identity", None), ("x-gzip", "gzip"), ("zstd", None),
        ("identity;q=0, gzip;q=0.1", "gzip"),
    ]
    with httpx.Client(base_url=base) as c:
        etags = set()
        for accept, expected in cases:
            headers = {"accept-encoding": accept} if accept is not None else {}
            if accept is None:
                headers = {"accept-encoding": ""}  # httpx would add its own; an empty value is "none"
            for path, entry in (("/", page), ("/assets/app.css", css)):
                r, raw = _raw(c, "GET", path, **headers)
                assert r.status_code == 200, (accept, path)
                assert r.headers.get("content-encoding") == expected, (accept, path)
                assert r.headers["vary"].lower() == "accept-encoding"
                assert r.headers["content-type"] == entry.content_type
                assert int(r.headers["content-length"]) == len(raw)
                decoded = decompress_bytes(raw, expected) if expected else raw
                assert sha(decoded) == entry.sha256, (accept, path)  # the file's bytes, exactly
                sent = entry.variant(expected).sha256 if expected else entry.sha256
                assert r.headers["etag"] == f'"{sent}"' and sha(raw) == sent
                etags.add(r.headers["etag"])
                h = c.head(path, headers=headers)
                assert h.headers.get("content-encoding") == expected and h.headers["etag"] == r.headers["etag"]
                assert h.headers["content-length"] == r.headers["content-length"] and h.content == b""
                # a conditional request with this encoding's tag: 304, still varying
                nm = c.get(path, headers={**headers, "if-none-match": r.headers["etag"]})
                assert nm.status_code == 304 and nm.headers["vary"].lower() == "accept-encoding"
        assert len(etags) == 6  # identity, br, gzip of each of the two files
        # another encoding's tag does not match: the client gets the bytes it can read
        other = c.get("/", headers={"accept-encoding": "gzip", "if-none-match": f'"{page.variant("br").sha256}"'})
        assert other.status_code == 200 and other.headers["content-encoding"] == "gzip"
        # a Range request is answered from the identity bytes, whatever the client accepts
        r, raw = _raw(c, "GET", "/", **{"accept-encoding": "br, gzip", "range": "bytes=10-19"})
        assert r.status_code == 206 and "content-encoding" not in r.headers and raw == PAGE.encode()[10:20]
        assert r.headers["vary"].lower() == "accept-encoding" and r.headers["etag"] == f'"{page.sha256}"'
        # files without variants: no Vary, no Content-Encoding
        for path in ("/tiny.txt", "/photo.png"):
            r, raw = _raw(c, "GET", path, **{"accept-encoding": "br, gzip"})
            assert "content-encoding" not in r.headers and "vary" not in r.headers, path
            assert raw == (build / path[1:]).read_bytes()
        # the build's own app.js.gz is a file like any other; app.js has br only
        r, raw = _raw(c, "GET", "/app.js.gz", **{"accept-encoding": "br, gzip"})
        assert raw == (build / "app.js.gz").read_bytes() and "content-encoding" not in r.headers
        r, raw = _raw(c, "GET", "/app.js", **{"accept-encoding": "gzip"})
        assert "content-encoding" not in r.headers and r.headers["vary"].lower() == "accept-encoding"
        r, raw = _raw(c, "GET", "/app.js", **{"accept-encoding": "gzip, br"})
        assert r.headers["content-encoding"] == "br" and decompress_bytes(raw, "br") == (build / "app.js").read_bytes()
        # a variant is not a page of the site: its tree name is not routed
        assert c.get("/index.html.br").status_code == 404


def _variant_key(store, m, path: str, encoding: str) -> str:
    f = m.by_path[path]
    v = f.as_variant(f.variant(encoding))
    return content_key(m.version, m.layout, v.path, v.sha256, link_trees=has_link_trees(store))


def test_verify_catches_a_missing_or_corrupt_variant(rig, tmp_path):
    build = build_site(tmp_path)
    version = publish(build, rig.store).version
    m = read_manifest(rig.store, version)
    gone, damaged = _variant_key(rig.store, m, "index.html", "br"), _variant_key(rig.store, m, "data.json", "gzip")
    rig.store.delete_many([gone])
    with pytest.raises(IntegrityError, match="damaged"):
        atomicsite.verify(None, rig.store, settings=COMPRESS)
    result = atomicsite.verify(None, rig.store, settings=COMPRESS, raise_on_failure=False)
    assert result.missing == ["index.html.br"] and result.mismatched == []
    rig.store.put(damaged, compress_bytes(b"something else entirely" * 100, "gzip"), content_type="application/json",
                  extra_headers={"content-encoding": "gzip"})
    result = atomicsite.verify(None, rig.store, settings=COMPRESS, raise_on_failure=False)
    assert result.missing == ["index.html.br"] and result.mismatched == ["data.json.gz"]


def test_a_failure_uploading_variants_leaves_live_alone_and_a_rerun_resumes(rig, tmp_path):
    build = build_site(tmp_path)
    v1 = publish(build, rig.store, settings=SETTINGS).version  # live, without variants
    (build / "index.html").write_text(PAGE + "<p>new</p>")

    uploads: list[str] = []

    def hook(name):
        fn = getattr(rig.store, name)

        def call(*args, **kwargs):
            # a variant's write is the one with a Content-Encoding (pool keys do not say it)
            if (kwargs.get("extra_headers") or {}).get("content-encoding"):
                uploads.append(args[0] if name == "put" else args[1])
                if len(uploads) == 2:
                    raise Crash("injected failure writing a compressed variant")
            return fn(*args, **kwargs)

        return call

    wrapped = _Intercept(rig.store, hook)
    with pytest.raises(Crash):
        publish(build, wrapped, settings=replace(COMPRESS, concurrency=1))
    assert read_pointer(rig.store, "live").version == v1  # live as it was
    if hasattr(rig.store, "live_link_target"):
        assert rig.store.live_link_target() == f"v/{v1}"

    counting = OpsStore(rig.store)
    result = publish(build, counting)
    assert result.switched and read_pointer(rig.store, "live").version == result.version
    # the variant that landed before the failure is not uploaded again (OpsStore records a copy by
    # its source: on the local store the objects layout links the pool object into the tree)
    assert ("put", uploads[0]) not in counting.calls
    assert any(op == "put" and key.endswith(".json") is False for op, key in counting.calls)
    assert atomicsite.verify(None, rig.store, settings=COMPRESS).ok


class _Intercept:
    """A store whose put/copy go through ``hook``; everything else straight to ``inner``."""

    def __init__(self, inner, hook):
        self.inner, self.url, self._hook = inner, inner.url, hook

    def __getattr__(self, name):
        if name in ("put", "copy"):
            return self._hook(name)
        return getattr(self.inner, name)


def test_unchanged_files_are_not_compressed_again(rig, tmp_path, monkeypatch, layout):
    import atomicsite.compress as compress

    build = build_site(tmp_path)
    v1 = publish(build, rig.store).version
    (build / "index.html").write_text(PAGE + "<p>changed</p>")
    made: list[str] = []
    real = compress._compress  # every compression goes through it
    monkeypatch.setattr(compress, "_compress", lambda chunks, enc, *a, **k: made.append(enc) or real(chunks, enc, *a, **k))
    result = publish(build, rig.store)
    assert sorted(made) == ["br", "gzip"]  # index.html's two variants; the other files' records are reused
    variants = [a for a in result.plan.actions if a.encoding]
    assert len(variants) == 7
    uploaded = [a.entry.path for a in variants if a.kind == "upload"]
    assert sorted(uploaded) == ["index.html.br", "index.html.gz"]
    assert atomicsite.verify(None, rig.store, settings=COMPRESS).ok
    # a variant whose older objects are all gone (deleted behind the tool's back, so repaired with
    # --repair: a plain publish would trust the served manifest) is made again when uploaded, and
    # hashes as recorded
    m1, m2 = read_manifest(rig.store, v1), read_manifest(rig.store, result.version)
    (build / "index.html").write_text(PAGE + "<p>changed again</p>")
    gone = m1.by_path["data.json"].variant("br").sha256
    rig.store.delete_many({_variant_key(rig.store, m, "data.json", "br") for m in (m1, m2)} | {pool_key(gone)})
    made.clear()
    third = publish(build, rig.store, repair=True)
    assert sorted(made) == ["br", "br", "gzip"] and third.switched  # index.html's two, data.json's br again
    assert atomicsite.verify(None, rig.store, settings=COMPRESS).ok


def test_headers_rules_content_disposition_and_language_are_stored_on_objects(rig, tmp_path, layout):
    """Issue 13 §2: what ``_headers`` gives a file that object headers can carry is stored with it
    (variants included), so a bucket or CDN serving the tree sends it too."""
    build = build_site(tmp_path)
    (build / "_headers").write_text("/data.json\n  Content-Disposition: attachment\n"
                                    "/*\n  Content-Language: en\n  X-Frame-Options: DENY\n")
    version = publish(build, rig.store).version
    m = read_manifest(rig.store, version)
    assert m.stored_extra["data.json"] == (("content-disposition", "attachment"), ("content-language", "en"))
    assert m.stored_extra["data.json.br"] == m.stored_extra["data.json"]
    if not rig.keeps_headers:
        return
    link_trees = has_link_trees(rig.store)
    f = m.by_path["data.json"]
    for entry, enc in [(f, None), *((f.as_variant(v), v.encoding) for v in f.variants)]:
        info = rig.store.head(content_key(m.version, m.layout, entry.path, entry.sha256, link_trees=link_trees))
        want = {"content-disposition": "attachment", "content-language": "en"}
        if enc:
            want["content-encoding"] = enc
        assert info.extra_headers == want, entry.path
    page = m.by_path["index.html"]
    info = rig.store.head(content_key(m.version, m.layout, "index.html", page.sha256, link_trees=link_trees))
    assert info.extra_headers == {"content-language": "en"}  # X-Frame-Options is the router's alone
    # a rule change is a new version; in the tree layout its copies carry the new headers, not the old
    (build / "_headers").write_text("/*\n  Content-Language: de\n")
    v2 = publish(build, rig.store).version
    m2 = read_manifest(rig.store, v2)
    info = rig.store.head(content_key(v2, m2.layout, "data.json", f.sha256, link_trees=link_trees))
    if m2.layout != OBJECTS or link_trees:
        assert info.extra_headers == {"content-language": "de"}


def test_a_variant_stored_wrong_is_caught_before_the_switch(rig, tmp_path):
    """Verify before commit covers variants: a store that keeps other bytes than a variant's
    (a proxy re-encoding it, say) fails the publish, and live stays where it was."""
    build = build_site(tmp_path)
    v1 = publish(build, rig.store, settings=SETTINGS).version

    def hook(name):
        fn = getattr(rig.store, name)

        def call(*args, **kwargs):
            if name == "put" and (kwargs.get("extra_headers") or {}).get("content-encoding") == "gzip":
                args = (args[0], compress_bytes(b"not the file at all" * 50, "gzip"), *args[2:])
            return fn(*args, **kwargs)

        return call

    with pytest.raises(IntegrityError, match="do not match the build"):
        publish(build, _Intercept(rig.store, hook))
    assert read_pointer(rig.store, "live").version == v1
    result = publish(build, rig.store)  # a re-run redoes the bad objects and goes live
    assert result.switched and atomicsite.verify(None, rig.store, settings=COMPRESS).ok


def test_prune_keeps_variants_a_kept_version_references_and_collects_the_rest(rig, tmp_path, layout):
    if layout != OBJECTS:
        pytest.skip("the tree layout deletes a version's variants with its v/<version>/ tree")
    build = build_site(tmp_path)
    v1 = publish(build, rig.store).version  # with variants
    m1 = read_manifest(rig.store, v1)
    variant_keys = {pool_key(v.sha256) for f in m1.files for v in f.variants}
    (build / "extra.txt").write_text("one more file")
    publish(build, rig.store)  # v2, with the same variants
    atomicsite.prune(rig.store, keep=1, grace=0, settings=COMPRESS)
    pool = {i.key for i in rig.store.list("_atomicsite/objects/")}
    assert variant_keys <= pool  # v2 still references every one of them
    assert atomicsite.verify(None, rig.store, settings=COMPRESS).ok
    publish(build, rig.store, settings=SETTINGS)  # v3 and v4 without variants (prune spares the previous)
    (build / "extra.txt").write_text("and another")
    publish(build, rig.store, settings=SETTINGS)
    atomicsite.prune(rig.store, keep=1, grace=0, settings=COMPRESS)
    pool = {i.key for i in rig.store.list("_atomicsite/objects/")}
    assert not variant_keys & pool  # no kept manifest references them any more
    assert atomicsite.verify(None, rig.store, settings=COMPRESS).ok


def test_files_with_the_same_content_are_compressed_once(tmp_path, monkeypatch):
    """Two files with one content get the same variant records from one compression."""
    import atomicsite.compress as compress
    from atomicsite.scan import scan

    build = build_site(tmp_path)
    (build / "copy-of-index.html").write_bytes((build / "index.html").read_bytes())
    made: list[str] = []
    real = compress._compress
    monkeypatch.setattr(compress, "_compress", lambda chunks, enc, *a, **k: made.append(enc) or real(chunks, enc, *a, **k))
    with compress.VariantFiles() as out:
        files = {f.entry.path: f.entry for f in compress.add_variants(scan(build), COMPRESS.compress, out)}
    assert files["copy-of-index.html"].variants == files["index.html"].variants != ()
    distinct = {(e.sha256, v.encoding) for e in files.values() for v in e.variants}
    assert len(made) == len(distinct)  # one compression per content and encoding, not per file
