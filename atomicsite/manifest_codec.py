"""How a manifest is stored: the bytes of every manifest format, separate from what a manifest means.

A manifest's content (:mod:`atomicsite.manifest`) is a JSON object whose ``files`` maps each path to
its sha256, size, md5, Content-Type and Cache-Control. Stored like that (formats 1 and 2) it costs
~270 bytes per file, and ``versions``/the router download it whole. Format 3 stores the same content
in ~77 bytes per file (the 10,000-file synthetic site); the version id does not change, because it is
the hash of the file table, not of these bytes.

Format 3 is still a JSON object (so an older atomicsite reading one says "unknown format 3", not
"not JSON"), with every top-level field of the manifest as it is, except ``files``::

    {"format": 3, "content_format": 1, "version": "…", "created": "…", … every other top-level field …,
     "files": {"count": 10000, "encoding": "zlib+base64", "data": "eJzs…"}}

``content_format`` is the format of the content the envelope holds (1, or 2 with rules): unpacked,
the manifest is exactly that format's object, validated by ``Manifest.from_json`` like a stored one.

``data`` is base64 of the zlib-compressed (RFC 1950, what browsers' ``DecompressionStream("deflate")``
reads) canonical JSON of a columnar table::

    {"paths":   ["a.html", "b/c.css", …],          sorted, unique
     "sizes":   [3, 1200, …],
     "headers": [["text/html; charset=utf-8", "public, max-age=0, must-revalidate"], …],  each pair once
     "header":  [0, 1, …],                          index into "headers", one per path
     "sha256":  "<base64 of the concatenated 32-byte digests>",
     "md5":     "<base64 of the concatenated 16-byte digests>",
     "variants": {"br": {"files": [0, 1, …], "sizes": […], "sha256": "<base64>", "md5": "<base64>"}, …}}

``variants`` (content format 4 only: compressed copies, atomicsite.compress) holds, per encoding, the
indices of the files that have one (ascending) and the variants' sizes and digests in that order.

Format 5 is format 3 with an ``md5`` column left out where every MD5 in it is empty (a local-store
target's scan computes none); it is written only then, so everything else stays readable by releases
that know format 3 alone.

Columns compress far better than per-file objects; digests are stored as bytes because hex doubles
them and they do not compress. :func:`decode` turns any stored format back into the format-1/2
shaped object, checking every column's length and every value's type, so the one validation in
``Manifest.from_json`` (and its version-id check) covers every format.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib

STORED_FORMAT = 3  # any other format number is plain JSON, whose number Manifest.from_json checks
# Format 5 is format 3 where an md5 column may be left out, when every md5 in it is empty: the local
# store never proves bytes by MD5, so its scan does not compute them (atomicsite.scan). A manifest
# with every MD5 is still written as format 3, which atomicsite before 0.3 reads too.
NO_MD5_FORMAT = 5
STORED_FORMATS = (STORED_FORMAT, NO_MD5_FORMAT)
ENCODING = "zlib+base64"
_MAX_TABLE = 1 << 30  # refuse to inflate a table past 1 GiB: a corrupt or hostile object, not a site


class CodecError(ValueError):
    """The stored bytes are not a manifest this code can read; the message says why."""


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(manifest: dict) -> bytes:
    """Format-1/2 shaped manifest object → format-3 bytes. Every top-level field but ``files`` is
    carried as it is (so fields added later need no change here); ``format`` becomes 3."""
    files: dict = manifest["files"]
    paths = sorted(files)
    headers: dict[tuple[str, str], int] = {}
    index = []
    for p in paths:
        e = files[p]
        index.append(headers.setdefault((e["content_type"], e["cache_control"]), len(headers)))
    table = {
        "paths": paths,
        "sizes": [files[p]["size"] for p in paths],
        "headers": [list(h) for h in headers],
        "header": index,
        "sha256": base64.b64encode(bytes.fromhex("".join([files[p]["sha256"] for p in paths]))).decode("ascii"),
    }
    md5 = "".join([files[p]["md5"] for p in paths])
    if md5:
        table["md5"] = base64.b64encode(bytes.fromhex(md5)).decode("ascii")
    variants: dict[str, dict] = {}
    for i, p in enumerate(paths):
        for enc, v in (files[p].get("variants") or {}).items():
            col = variants.setdefault(enc, {"files": [], "sizes": [], "sha256": [], "md5": []})
            col["files"].append(i)
            col["sizes"].append(v["size"])
            col["sha256"].append(bytes.fromhex(v["sha256"]))
            col["md5"].append(bytes.fromhex(v["md5"]))
    if variants:
        table["variants"] = {enc: {**col, "sha256": base64.b64encode(b"".join(col["sha256"])).decode("ascii"),
                                   "md5": base64.b64encode(b"".join(col["md5"])).decode("ascii")}
                             for enc, col in variants.items()}
        for col in table["variants"].values():
            if not col["md5"]:
                del col["md5"]
    no_md5 = "md5" not in table or any("md5" not in col for col in table.get("variants", {}).values())
    # Level 6, zlib's default: a 50,000-file table compresses in 0.14 s instead of 0.22 s at level 9,
    # for 0.5 byte per file more (the digests, most of the bytes, do not compress at any level).
    packed = base64.b64encode(zlib.compress(_canonical(table), 6)).decode("ascii")
    out = {k: v for k, v in manifest.items() if k != "files"}
    out["format"], out["content_format"] = NO_MD5_FORMAT if no_md5 else STORED_FORMAT, manifest["format"]
    out["files"] = {"count": len(paths), "encoding": ENCODING, "data": packed}
    return _canonical(out)


def encodable(manifest: dict) -> bool:
    """Whether every digest is hex (format 3 stores digests as bytes), and each md5 column is whole or
    empty (format 5 leaves out an empty one); anything else stays plain JSON."""
    try:
        files = list(manifest["files"].values())
        columns: dict[str | None, list[dict]] = {None: files}
        for e in files:
            for enc, v in (e.get("variants") or {}).items():
                columns.setdefault(enc, []).append(v)
        entries = [e for col in columns.values() for e in col]
        if not all(len(e["sha256"]) == 64 for e in entries):
            return False
        if not all({len(e["md5"]) for e in col} in ({32}, {0}) for col in columns.values()):
            return False
        bytes.fromhex("".join([e["sha256"] + e["md5"] for e in entries]))  # one call checks every digest
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return True


def decode(data: bytes) -> tuple[int, dict]:
    """Stored bytes → (stored format, the manifest object as its content format writes it).

    Plain JSON formats are returned as parsed, for ``Manifest.from_json`` to check their number and
    fields; for format 3 the table is unpacked and checked here.
    """
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise CodecError("not a JSON object")
    fmt = raw.get("format")
    if fmt not in STORED_FORMATS or isinstance(fmt, bool):
        return fmt, raw
    content = raw.pop("content_format", None)
    if content in STORED_FORMATS:
        raise CodecError(f"format {fmt} cannot hold format {content}")
    raw["files"] = _unpack(raw.get("files"), md5_optional=fmt == NO_MD5_FORMAT)
    raw["format"] = content
    return fmt, raw


def _unpack(packed, *, md5_optional: bool) -> dict:
    if not isinstance(packed, dict) or packed.get("encoding") != ENCODING:
        raise CodecError(f"format 3 file table is not {ENCODING!r} encoded")
    count, data = packed.get("count"), packed.get("data")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1 or not isinstance(data, str):
        raise CodecError("format 3 file table has no count or data")
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(base64.b64decode(data, validate=True), _MAX_TABLE)
        if inflater.unconsumed_tail or not inflater.eof:
            raise CodecError("format 3 file table is truncated or too large")
        table = json.loads(text)
    except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"format 3 file table does not decode ({exc})") from None
    if not isinstance(table, dict):
        raise CodecError("format 3 file table is not an object")
    paths = _column(table, "paths", count, str)
    sizes = _column(table, "sizes", count, int)
    index = _column(table, "header", count, int)
    headers = table.get("headers")
    if (not isinstance(headers, list)
            or not all(isinstance(h, list) and len(h) == 2 and all(isinstance(s, str) for s in h) for h in headers)):
        raise CodecError("format 3 header table is not a list of [content type, cache control] pairs")
    sha = _digests(table, "sha256", count, 32)
    md5 = _digests(table, "md5", count, 16, optional=md5_optional)
    if any(s < 0 for s in sizes):
        raise CodecError("format 3 file table has a negative size")
    if any(not 0 <= i < len(headers) for i in index):
        raise CodecError("format 3 file table refers to a header pair it does not hold")
    if any(a >= b for a, b in zip(paths, paths[1:])):
        raise CodecError("format 3 paths are not sorted and unique")
    # Strings of one header pair are shared by every file that uses it: the router keeps fewer copies.
    files = {
        p: {"sha256": sha[i * 64:(i + 1) * 64], "size": sizes[i], "md5": md5[i * 32:(i + 1) * 32],
            "content_type": headers[index[i]][0], "cache_control": headers[index[i]][1]}
        for i, p in enumerate(paths)
    }
    if "variants" in table:
        _unpack_variants(table["variants"], paths, files, md5_optional)
    return files


def _unpack_variants(variants, paths: list[str], files: dict, md5_optional: bool) -> None:
    if not isinstance(variants, dict) or not variants:
        raise CodecError("format 3 variants are not a table of encodings")
    for enc, col in variants.items():
        if not isinstance(col, dict) or not isinstance(col.get("files"), list):
            raise CodecError(f"format 3 variants {enc!r} have no file column")
        n = len(col["files"])
        where = _column(col, "files", n, int)
        sizes = _column(col, "sizes", n, int)
        sha = _digests(col, "sha256", n, 32)
        md5 = _digests(col, "md5", n, 16, optional=md5_optional)
        if n == 0 or any(not 0 <= i < len(paths) for i in where) or any(a >= b for a, b in zip(where, where[1:])):
            raise CodecError(f"format 3 variants {enc!r} name files the table does not hold, or out of order")
        if any(s < 0 for s in sizes):
            raise CodecError(f"format 3 variants {enc!r} have a negative size")
        for j, i in enumerate(where):
            files[paths[i]].setdefault("variants", {})[enc] = {
                "sha256": sha[j * 64:(j + 1) * 64], "size": sizes[j], "md5": md5[j * 32:(j + 1) * 32]}


def _column(table: dict, name: str, count: int, kind: type) -> list:
    col = table.get(name)
    if not isinstance(col, list) or len(col) != count:
        raise CodecError(f"format 3 column {name!r} does not hold {count} values")
    if not all(type(v) is kind for v in col):  # exact type: True is not a size
        raise CodecError(f"format 3 column {name!r} holds a value that is not {kind.__name__}")
    return col


def _digests(table: dict, name: str, count: int, width: int, *, optional: bool = False) -> str:
    """The column as one hex string (``width`` bytes per file); with ``optional``, a column left out
    is ``count`` empty digests (an empty string: slicing it gives each file "")."""
    col = table.get(name)
    if optional and col is None:
        return ""
    try:
        raw = base64.b64decode(col, validate=True) if isinstance(col, str) else None
    except binascii.Error:
        raw = None
    if raw is None or len(raw) != count * width:
        raise CodecError(f"format 3 column {name!r} does not hold {count} digests of {width} bytes")
    return raw.hex()


__all__ = ["encode", "encodable", "decode", "CodecError", "STORED_FORMAT", "STORED_FORMATS", "NO_MD5_FORMAT"]
