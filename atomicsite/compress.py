"""Precompressed variants: brotli and gzip copies of compressible files, made once at publish.

With ``compress = ["br", "gzip"]`` each file whose Content-Type is compressible and whose size is at
least ``compress_min_size`` gets a variant per encoding, kept only when it is smaller than the file.
A variant is stored beside its file (docs/layout.md): in the tree layout at ``v/<version>/<path>.br``
and ``<path>.gz`` (the names nginx's ``gzip_static``/``brotli_static`` look for), in the objects
layout in the pool under the sha256 of its own bytes. The manifest records each variant's sha256,
size and MD5, so it is verified like every other object; the router negotiates ``Accept-Encoding``.

Output is deterministic for a given library version (gzip at level 9 with mtime 0 and no file name,
brotli at quality 11), so a re-run makes the same bytes and finds them already stored. Which
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
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigError

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


def compress_bytes(data: bytes, encoding: str, brotli_quality: int = BROTLI_QUALITY) -> bytes:
    if encoding == GZIP:
        # mtime=0 and no file name in the header: the same input gives the same bytes on every run
        return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
    if encoding == BR:
        import brotli  # lazily: only publishes with compress on pay for the import

        return brotli.compress(data, quality=brotli_quality)
    raise ValueError(f"unknown encoding {encoding!r}")


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
        self.sources: dict[str, Path] = {}  # variant path → its bytes on disk

    def _path(self) -> Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="atomicsite-variants-")
        return Path(self._dir.name)

    def write(self, data: bytes) -> Path:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path() / digest
        if not path.exists():
            path.write_bytes(data)
        return path

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
    brotli_quality: int = BROTLI_QUALITY

    def __call__(self) -> bytes:
        from .errors import IntegrityError

        packed = compress_bytes(Path(self.source).read_bytes(), self.variant.encoding, self.brotli_quality)
        if hashlib.sha256(packed).hexdigest() != self.variant.sha256:
            raise IntegrityError(
                f"{self.source}: its {self.variant.encoding} variant, recorded by an older version whose object "
                "is gone, compresses to other bytes now (another brotli/zlib release, or compress_brotli_quality).",
                hint="Publish once with --compress none, then with compress on again (that makes fresh variants).")
        return packed


def add_variants(files: list, settings: CompressSettings, out: VariantFiles, *, known: Mapping | None = None,
                 workers: int | None = None) -> list:
    """Scanned files (atomicsite.scan.ScannedFile) → the same, their entries carrying variants.

    Each new variant's bytes go to ``out`` (its ``sources`` maps the variant's tree path to them). A
    variant ``known`` (:func:`known_variants`) for the same content is reused without compressing:
    publish copies its object (tree layout) or finds it in the pool (objects layout)."""
    from .manifest import Variant

    if not settings:
        return files
    taken = {f.entry.path for f in files}
    known = known or {}

    def one(f):
        e = f.entry
        if not settings.wants(e.content_type, e.size):
            return f, []
        todo = [enc for enc in settings.encodings if variant_path(e.path, enc) not in taken]
        made = [(known[(e.sha256, enc)], None) for enc in todo if (e.sha256, enc) in known]
        todo = [enc for enc in todo if (e.sha256, enc) not in known]
        if todo:
            data = Path(f.source).read_bytes()
            for enc in todo:
                packed = compress_bytes(data, enc, settings.brotli_quality)
                if len(packed) >= e.size:
                    continue  # no saving: the file is served as it is
                made.append((Variant(enc, hashlib.sha256(packed).hexdigest(), len(packed),
                                     hashlib.md5(packed).hexdigest()), packed))
        made.sort(key=lambda m: ENCODINGS.index(m[0].encoding))
        return f, made

    result = []
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # zlib and brotli release the GIL
        for f, made in pool.map(one, files):
            if made:
                for v, packed in made:
                    path = variant_path(f.entry.path, v.encoding)
                    out.sources[path] = (out.write(packed) if packed is not None
                                         else Remake(f.source, v, settings.brotli_quality))
                f = replace(f, entry=replace(f.entry, variants=tuple(v for v, _ in made)))
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
