"""Format 3, the compact stored manifest: same version id, every older format still read, every field
of the stored bytes validated (atomicsite.manifest_codec)."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import pytest

from atomicsite import manifest_codec
from atomicsite.errors import IntegrityError
from atomicsite.manifest import FORMAT, FORMAT_RULES, FileEntry, Manifest, canonical_json, version_id
from atomicsite.routing.redirects import Redirect
from atomicsite.routing.site import SiteRules
from atomicsite.scan import scan
from fixtures.synthetic import generate_site

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def entries(n: int) -> list[FileEntry]:
    kinds = [("text/html; charset=utf-8", "public, max-age=0, must-revalidate"),
             ("text/css; charset=utf-8", "public, max-age=31536000, immutable")]
    return [FileEntry(f"dir-{i % 7}/file-{i}.html", f"{i:064x}", i * 10, f"{i + 1:032x}", *kinds[i % 2])
            for i in range(n)]


def test_format_3_round_trips_with_the_id_format_1_gives_the_same_build():
    files = entries(50)
    m = Manifest.build(files, message="hello", source={"commit": "abc"})
    stored = m.to_json()
    assert json.loads(stored)["format"] == 3
    back = Manifest.from_json(stored, where="t", expect_version=m.version)
    assert back == m and back.files == m.files and back.format == 3
    # The same content stored as format 1 (what 0.1 wrote) reads to the same manifest and id.
    plain = Manifest.from_json(canonical_json(m.to_dict()), where="t", expect_version=m.version)
    assert plain.files == back.files and plain.version == back.version == version_id(files)
    assert plain.format == FORMAT


def test_rules_and_unknown_top_level_fields_are_carried_through():
    rules = SiteRules((Redirect("/a", "/b", 302),))
    m = Manifest.build(entries(3), rules=rules)
    d = m.to_dict()
    d["layout"] = "objects"  # a field this codec does not know about (added by another part of the code)
    d["future"] = {"nested": [1, 2]}
    stored = json.loads(manifest_codec.encode(d))
    assert stored["layout"] == "objects" and stored["future"] == {"nested": [1, 2]} and stored["rules"]
    assert stored["format"] == 3 and stored["content_format"] == FORMAT_RULES
    fmt, plain = manifest_codec.decode(manifest_codec.encode(d))
    assert fmt == 3 and plain == d  # exactly the format-2 content back
    back = Manifest.from_json(manifest_codec.encode(d), where="t", expect_version=m.version)
    assert back.rules == rules and back.to_dict()["format"] == FORMAT_RULES


def test_header_pairs_are_stored_once_and_shared():
    m = Manifest.build(entries(100))
    packed = json.loads(m.to_json())["files"]
    table = json.loads(zlib.decompress(base64.b64decode(packed["data"])))
    assert packed["count"] == 100 and len(table["headers"]) == 2 and len(table["header"]) == 100
    back = Manifest.from_json(m.to_json(), where="t")
    assert len({id(f.content_type) for f in back.files}) == 2  # one string per pair in memory too


def test_non_hex_digests_stay_plain_json():
    odd = [FileEntry("a.html", "1" * 64, 3, "m", "text/html", "no-cache")]
    m = Manifest.build(odd)
    assert json.loads(m.to_json())["format"] == FORMAT
    assert Manifest.from_json(m.to_json(), where="t").files == m.files


def _tampered(m: Manifest, change) -> bytes:
    outer = json.loads(m.to_json())
    table = json.loads(zlib.decompress(base64.b64decode(outer["files"]["data"])))
    change(outer, table)
    outer["files"]["data"] = base64.b64encode(zlib.compress(canonical_json(table))).decode()
    return json.dumps(outer).encode()


def _set(key, value):
    return lambda outer, table: table.__setitem__(key, value)


@pytest.mark.parametrize("change, why", [
    (_set("sizes", [1] * 3), "column 'sizes' does not hold 4"),
    (_set("sizes", [1, 2, 3, True]), "not int"),
    (_set("sizes", [1, 2, 3, -4]), "negative size"),
    (_set("sizes", [1, 2, 3, "4"]), "not int"),
    (_set("paths", ["a", "b", "b", "c"]), "not sorted and unique"),
    (_set("paths", ["a", "b", "c", 4]), "not str"),
    (_set("header", [0, 0, 0, 9]), "header pair it does not hold"),
    (_set("headers", [["text/html"]]), "header table"),
    (_set("sha256", base64.b64encode(b"x" * 31 * 4).decode()), "digests of 32 bytes"),
    (_set("md5", "not base64!"), "digests of 16 bytes"),
    (_set("sha256", base64.b64encode(b"\x00" * 32 * 4).decode()), "does not hash to its version id"),
    (lambda outer, table: outer["files"].__setitem__("count", 5), "does not hold 5"),
    (lambda outer, table: outer["files"].__setitem__("encoding", "lzma"), "not 'zlib\\+base64' encoded"),
    (lambda outer, table: outer.__setitem__("version", "0" * 16), "does not hash to its version id"),
    (lambda outer, table: outer.__setitem__("created", 5), "no created time"),
    (lambda outer, table: outer.__setitem__("content_format", 9), "unknown format 9"),
    (lambda outer, table: outer.pop("content_format"), "unknown format None"),
    (lambda outer, table: outer.__setitem__("source", []), "source is not an object"),
    (lambda outer, table: outer.__setitem__("message", 5), "message or tool is not a string"),
    (lambda outer, table: outer.__setitem__("tool", None), "message or tool is not a string"),
])
def test_every_field_of_a_format_3_manifest_is_validated(change, why):
    m = Manifest.build(entries(4))
    with pytest.raises(IntegrityError, match=why):
        Manifest.from_json(_tampered(m, change), where="t")


@pytest.mark.parametrize("data, why", [
    (b'{"format": 3, "version": "0123456789abcdef", "files": {"a": {}}}', "not 'zlib\\+base64' encoded"),
    (b'{"format": 3, "files": {"count": 1, "encoding": "zlib+base64", "data": "@@@"}}', "does not decode"),
    (b'{"format": 3, "files": {"count": 1, "encoding": "zlib+base64", "data": "' + base64.b64encode(b"junk")
     + b'"}}', "does not decode"),
    (b'{"format": 3, "files": {"count": 1, "encoding": "zlib+base64", "data": "'
     + base64.b64encode(zlib.compress(b"[]")) + b'"}}', "not an object"),
    (b'{"format": 3, "files": {"count": 1, "encoding": "zlib+base64", "data": "'
     + base64.b64encode(zlib.compress(b'{"paths": []}')[:-3]) + b'"}}', "truncated"),
    (b'{"format": 6}', "unknown format 6"),  # 4 is the content format with variants, 5 an envelope
    (b'{"format": true}', "unknown format True"),
    (b'{"format": 3, "content_format": 3}', "cannot hold format 3"),
    (b'{"format": 5, "content_format": 3}', "cannot hold format 3"),
])
def test_broken_format_3_envelopes_are_corrupt(data, why):
    with pytest.raises(IntegrityError, match=why):
        Manifest.from_json(data, where="t")


def _bytes_per_file(root: Path) -> float:
    m = Manifest.build(f.entry for f in scan(root))
    return len(m.to_json()) / len(m.files)


def test_a_synthetic_site_stores_at_most_100_bytes_per_file(tmp_path):
    # The target ("<= 100 bytes per file for typical sites"), on the synthetic generator's layout.
    per_file = _bytes_per_file(generate_site(tmp_path / "site", files=2_000))
    assert per_file <= 100, per_file


def test_fixture_manifests_shrink():
    for name in ("blog", "spa", "odd-names"):
        m = Manifest.build(f.entry for f in scan(FIXTURES / name))
        assert len(m.to_json()) < len(canonical_json(m.to_dict())), name


# -- content format 4: compressed variants (atomicsite.compress) ------------------------------------

def _with_variants(files: list[FileEntry]) -> list[FileEntry]:
    from dataclasses import replace

    from atomicsite.manifest import Variant

    out = []
    for i, f in enumerate(files):
        vs = ()
        if i % 3 == 0:
            vs = (Variant("br", f"{i + 7:064x}", 5 + i, f"{i + 8:032x}"), Variant("gzip", f"{i + 9:064x}", 6 + i, f"{i + 3:032x}"))
        elif i % 3 == 1:
            vs = (Variant("gzip", f"{i + 5:064x}", 4 + i, f"{i + 2:032x}"),)
        out.append(replace(f, variants=vs))
    return out


def test_format_4_round_trips_stored_as_3_and_as_plain_json():
    from atomicsite.manifest import FORMAT_VARIANTS

    files = _with_variants(entries(30))
    m = Manifest.build(files, rules=SiteRules(redirects=(Redirect("/a", "/b", 301),)))
    stored = m.to_json()
    envelope = json.loads(stored)
    assert envelope["format"] == 3 and envelope["content_format"] == FORMAT_VARIANTS
    back = Manifest.from_json(stored, where="t", expect_version=m.version)
    assert back.files == m.files and back.rules == m.rules
    plain = Manifest.from_json(canonical_json(m.to_dict()), where="t", expect_version=m.version)
    assert plain.files == m.files
    assert sorted(e.path for e, enc in back.stored if enc == "br") == sorted(f.path + ".br" for f in files if f.variant("br"))


def test_which_encodings_a_file_has_is_part_of_the_id_but_not_their_hashes():
    from dataclasses import replace

    plain = entries(5)
    with_v = _with_variants(plain)
    other_bytes = [replace(f, variants=tuple(replace(v, sha256="f" * 64) for v in f.variants)) for f in with_v]
    assert version_id(plain) != version_id(with_v) == version_id(other_bytes)
    # without variants the id, the content format and the stored bytes are exactly as before
    assert Manifest.build(plain).to_dict()["format"] == FORMAT


@pytest.mark.parametrize("damage, why", [
    (lambda t: t["variants"]["gzip"].update(files=[99]), "does not hold|do not hold|out of order"),
    (lambda t: t["variants"]["gzip"].update(sizes=[-1] * len(t["variants"]["gzip"]["sizes"])), "negative size"),
    (lambda t: t["variants"]["gzip"].update(sha256="AAAA"), "digests"),
    (lambda t: t.update(variants=[]), "not a table"),
    (lambda t: t["variants"].update(zstd=t["variants"]["gzip"]), "unknown encoding"),
])
def test_damaged_variant_columns_are_corrupt(damage, why):
    m = Manifest.build(_with_variants(entries(9)))
    envelope = json.loads(m.to_json())
    table = json.loads(zlib.decompress(base64.b64decode(envelope["files"]["data"])))
    damage(table)
    envelope["files"]["data"] = base64.b64encode(zlib.compress(canonical_json(table))).decode()
    with pytest.raises(IntegrityError, match=why):
        Manifest.from_json(canonical_json(envelope), where="t")


# -- format 5: the envelope without MD5 columns (a local-store target's scan computes none) ---------

def _no_md5(files: list[FileEntry]) -> list[FileEntry]:
    from dataclasses import replace

    return [replace(f, md5="") for f in files]


def _table(stored: bytes) -> dict:
    return json.loads(zlib.decompress(base64.b64decode(json.loads(stored)["files"]["data"])))


def test_a_manifest_without_md5_is_stored_as_format_5_and_reads_back_with_the_same_id():
    with_md5 = Manifest.build(entries(40))
    m = Manifest.build(_no_md5(entries(40)))
    assert m.version == with_md5.version  # md5 is not part of the id
    stored = m.to_json()
    assert json.loads(stored)["format"] == 5 and "md5" not in _table(stored)
    back = Manifest.from_json(stored, where="t", expect_version=m.version)
    assert back.files == m.files and back.format == 5 and all(f.md5 == "" for f in back.files)
    # every MD5 present: still format 3, which releases before format 5 read
    assert json.loads(with_md5.to_json())["format"] == 3


def test_format_5_leaves_out_each_empty_md5_column_on_its_own():
    # the local store's scan has no file MD5s, but compressed variants carry theirs
    m = Manifest.build(_with_variants(_no_md5(entries(12))))
    stored = m.to_json()
    table = _table(stored)
    assert json.loads(stored)["format"] == 5 and "md5" not in table
    assert all("md5" in col for col in table["variants"].values())
    assert Manifest.from_json(stored, where="t").files == m.files


def test_md5s_that_are_neither_all_there_nor_all_empty_stay_plain_json():
    from dataclasses import replace

    files = entries(4)
    files[2] = replace(files[2], md5="")
    m = Manifest.build(files)
    assert json.loads(m.to_json())["format"] == FORMAT  # plain JSON, read as before
    assert Manifest.from_json(m.to_json(), where="t").files == m.files


def test_format_3_still_needs_its_md5_column():
    m = Manifest.build(_no_md5(entries(5)))
    envelope = json.loads(m.to_json())
    envelope["format"] = 3  # the same table under the number that promises every MD5
    with pytest.raises(IntegrityError, match="column 'md5'"):
        Manifest.from_json(canonical_json(envelope), where="t")
