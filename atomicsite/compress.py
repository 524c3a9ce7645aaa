"""Precompressed variants: brotli and gzip copies of compressible files, made once at publish.

With ``compress = ["br", "gzip"]`` each file whose Content-Type is compressible and whose size is at
least ``compress_min_size`` gets a variant per encoding, kept only when it is smaller than the file.
A variant is stored beside its file (docs/layout.md): in the tree layout at ``v/<version>/<path>.br``
and ``<path>.gz`` (the names nginx's ``gzip_static``/``brotli_static`` look for), in the objects
layout in the pool under the sha256 of its own bytes. The manifest records each variant's sha256,
size and MD5, so it is verified like every other object; the router negotiates ``Accept-Encoding``.

Output is deterministic for a given library version (gzip at level 9 with mtime 0, no file name and
OS "unknown", brotli at quality 11, both fed the file in 1 MiB chunks), so a re-run makes the same bytes and finds them already stored. Which
encodings a file has is part of the version id; the variants' hashes are not (another brotli release
may make other bytes of the same content), see atomicsite.manifest.

A variant whose name is a file of the build (the build ships its own ``app.js.gz``) is not made: the
build's file wins, and is served as the build has it.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import BuildDirError, ConfigError, IntegrityError

BR, GZIP = "br", "gzip"
ENCODINGS = (BR, GZIP)  # in order of preference when a client accepts both equally
SUFFIX = {BR: ".br", GZIP: ".gz"}
GZIP_LEVEL = 9
BROTLI_QUALITY = 11
DEFAULT_MIN_SIZE = 1024  # below ~1 KiB the saving is less than a TCP packet and headers dominate
# Text and text-like formats; not woff/woff2 (compressed inside), not PNG/JPEG/WebP/AVIF, archives, media.
DEFAULT_TYPES = (
    "text/*", "application/javascript", "application/json", "application/*+json", "application/xml",
    "application/*+xml", "application/x-ndjson", "application/wasm", "image/svg+xml", "image/x-icon",
    "image/bmp", "font/ttf", "font/otf", "application/vnd.ms-fontobject", "application/yaml",
    "application/toml", "model/gltf+json", "model/obj", "model/stl",
)


@dataclass(frozen=True)
class CompressSettings:
    """``compress``, ``compress_min_size`` and ``compress_types`` in config; off when ``encodings`` is empty."""

    encodings: tuple[str, ...] = ()
    min_size: int = DEFAULT_MIN_SIZE
    types: tuple[str, ...] = DEFAULT_TYPES
    brotli_quality: int = BROTLI_QUALITY  # 0-11: 11 is the smallest and ~40x slower than 5 (bench_compress)

    def __bool__(self) -> bool:
        return bool(self.encodings)

    def wants(self, content_type: str, size: int) -> bool:
        """``CompressSettings(("br",)).wants("text/css; charset=utf-8", 4096)`` → True."""
        media = content_type.split(";", 1)[0].strip().lower()
        return size >= self.min_size and any(fnmatch.fnmatchcase(media, t) for t in self.types)


def parse_encodings(value, where: str) -> tuple[str, ...]:
    """``["br", "gzip"]`` (or ``"br,gzip"`` from the environment or a flag) → a checked tuple."""
    if isinstance(value, str):
        value = [] if value.strip().lower() == "none" else [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of encodings, like [\"br\", \"gzip\"]")
    out: list[str] = []
    for v in value:
        name = v.strip().lower()
        if name not in ENCODINGS:
            raise ConfigError(f"{where}: unknown encoding {v!r}", hint=f"Use {' and/or '.join(ENCODINGS)} (an empty list, or none, turns compression off).")
        if name not in out:
            out.append(name)
    return tuple(e for e in ENCODINGS if e in out)  # a fixed order: the same settings, the same manifest


def parse_types(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and "/" in v for v in value):
        raise ConfigError(f"{where}: must be a non-empty list of media types or globs, like [\"text/*\", \"image/svg+xml\"]")
    return tuple(v.strip().lower() for v in value)


def variant_path(path: str, encoding: str) -> str:
    """Where a variant sits beside its file in a version's tree: ``app.js`` → ``app.js.br``."""
    return path + SUFFIX[encoding]


_CHUNK = 1 << 20
# The gzip header written by hand: no time stamp, no name, "unknown" OS, so the bytes are the same on
# every machine (zlib's own gzip wrapper writes the OS it was built for).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


def _compress(chunks: Iterable[bytes], encoding: str, brotli_quality: int, write: Callable[[bytes], None],
              limit: int | None = None) -> bool:
    """Stream ``chunks`` through the encoder into ``write``; False (stopped early) once the output
    passes ``limit`` bytes, which is when it can no longer be smaller than its input."""
    written = 0

    def out(data: bytes) -> bool:
        nonlocal written
        if data:
            write(data)
            written += len(data)
        return limit is None or written < limit

    if encoding == GZIP:
        c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)  # raw deflate inside our own header
        crc = size = 0
        out(_GZIP_HEADER)
        for chunk in chunks:
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            if not out(c.compress(chunk)):
                return False
        return out(c.flush()) and out(struct.pack("<II", crc, size & 0xFFFFFFFF))
    if encoding == BR:
        import brotli  # lazily: only publishes with compress on pay for the import

        c = brotli.Compressor(quality=brotli_quality)
        for chunk in chunks:
            if not out(c.process(chunk)):
                return False
        return out(c.finish())
    raise ValueError(f"unknown encoding {encoding!r}")


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def compress_bytes(data: bytes, encoding: str, brotli_quality: int = BROTLI_QUALITY) -> bytes:
    """Exactly the bytes publish stores for a file holding ``data`` (same encoder, same chunks)."""
    parts: list[bytes] = []
    _compress((data[i:i + _CHUNK] for i in range(0, len(data), _CHUNK)), encoding, brotli_quality, parts.append)
    return b"".join(parts)


def decompress_bytes(data: bytes, encoding: str) -> bytes:
    if encoding == GZIP:
        return gzip.decompress(data)
    if encoding == BR:
        import brotli

        return brotli.decompress(data)
    raise ValueError(f"unknown encoding {encoding!r}")


class VariantFiles:
    """A temporary directory holding the variants made for one publish; removed on ``close``."""

    def __init__(self):
        self._dir: tempfile.TemporaryDirectory | None = None
        self._lock = threading.Lock()
        self.sources: dict[str, Path | Remake] = {}  # variant path → its bytes on disk (or how to remake them)

    def _path(self) -> Path:
        with self._lock:
            if self._dir is None:
                self._dir = tempfile.TemporaryDirectory(prefix="atomicsite-variants-")
            return Path(self._dir.name)

    def make(self, source: Path, encoding: str, brotli_quality: int, limit: int | None = None):
        """Compress the file ``source`` to a file here, streaming: ``(path, sha256, md5, size)``, or None
        when the output is not smaller than ``limit`` bytes."""
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
        fd, name = tempfile.mkstemp(dir=self._path(), prefix="part-")

        with os.fdopen(fd, "wb") as fh:
            def write(data: bytes) -> None:
                nonlocal size
                fh.write(data)
                sha.update(data)
                md5.update(data)
                size += len(data)

            try:
                smaller = _compress(_file_chunks(source), encoding, brotli_quality, write, limit)
            except OSError as exc:
                os.unlink(name)
                raise BuildDirError(f"{source}: cannot read it any more ({exc.strerror or exc}).",
                                    hint="Did the build dir change during publish? Re-run when the build is done.") from None
        if not smaller:
            os.unlink(name)
            return None
        return Path(name), sha.hexdigest(), md5.hexdigest(), size

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> VariantFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def known_variants(manifests: Iterable) -> dict[tuple[str, str], object]:
    """``(file sha256, encoding) → Variant`` from committed manifests of the target (atomicsite.manifest)."""
    return {(f.sha256, v.encoding): v for m in manifests for f in m.files for v in f.variants}


@dataclass(frozen=True)
class Remake:
    """The bytes of a variant whose record was reused from an older version, made again only if its
    object has to be uploaded after all (the older object is gone): they must hash as recorded."""

    source: Path
    variant: object  # atomicsite.manifest.Variant
    files: VariantFiles
    brotli_quality: int

    def __call__(self) -> Path:
        made = self.files.make(self.source, self.variant.encoding, self.brotli_quality)
        if made is None or made[1] != self.variant.sha256:
            raise IntegrityError(
                f"{self.source}: its {self.variant.encoding} variant, recorded by an older version whose object "
                "is gone, compresses to other bytes now (another brotli/zlib release, or compress_brotli_quality).",
                hint="Set reuse_from = 0 in the config for one publish: it then compresses every file afresh.")
        return made[0]


def add_variants(files: list, settings: CompressSettings, out: VariantFiles, *, known: Mapping | None = None,
                 workers: int | None = None) -> list:
    """Scanned files (atomicsite.scan.ScannedFile) → the same, their entries carrying variants.

    Each new variant's bytes go to a file in ``out`` (its ``sources`` maps the variant's tree path to
    it), compressed as a stream, so memory does not grow with file size. A variant ``known``
    (:func:`known_variants`) for the same content is reused without compressing: publish copies its
    object (tree layout) or finds it in the pool (objects layout)."""
    from .manifest import Variant

    if not settings:
        return files
    taken = {f.entry.path for f in files}
    known = known or {}
    # Per file, the variants it gets: a known record (reused), or the content to compress, each
    # distinct (sha256, encoding) compressed once however many files hold it.
    wanted: list[list[tuple[str, object]]] = []
    todo: dict[tuple[str, str], object] = {}  # (sha256, encoding) -> the first file holding it
    for f in files:
        e = f.entry
        mine = []
        if settings.wants(e.content_type, e.size):
            for enc in settings.encodings:
                if variant_path(e.path, enc) in taken:
                    continue  # the build has a file of that name: it wins
                v = known.get((e.sha256, enc))
                mine.append((enc, v if v is not None else todo.setdefault((e.sha256, enc), f)))
        wanted.append(mine)

    def make(item):
        (sha, enc), f = item
        return (sha, enc), out.make(f.source, enc, settings.brotli_quality, limit=f.entry.size)

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # zlib and brotli release the GIL
        made = dict(pool.map(make, todo.items()))
    result = []
    for f, mine in zip(files, wanted):
        variants = []
        for enc, v in mine:
            if isinstance(v, Variant):  # reused: remade only if its object has to be uploaded after all
                variants.append((v, Remake(f.source, v, out, settings.brotli_quality)))
            elif (got := made[(f.entry.sha256, enc)]) is not None:  # else no saving: served as it is
                path, sha, md5, size = got
                variants.append((Variant(enc, sha, size, md5), path))
        if variants:
            for v, source in variants:
                out.sources[variant_path(f.entry.path, v.encoding)] = source
            f = f.with_entry(replace(f.entry, variants=tuple(v for v, _ in variants)))
        result.append(f)
    return result


def savings(entries: Iterable, encodings: Iterable[str] = ENCODINGS) -> Mapping[str, int]:
    """Bytes of every file as stored, and as served to a client taking each encoding (bench, reports)."""
    totals = {"identity": 0, **{e: 0 for e in encodings}}
    for e in entries:
        totals["identity"] += e.size
        have = {v.encoding: v.size for v in e.variants}
        for enc in encodings:
            totals[enc] += have.get(enc, e.size)
    return totals
