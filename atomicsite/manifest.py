"""The manifest: one version's file table and provenance, and the content-addressed version id.

The version id is the first 16 hex chars of the sha256 of the canonical file table (each path with its
sha256, size, Content-Type and Cache-Control), so the same build under the same header rules always
gets the same id. Time, message and source are recorded but are not part of the id.

The manifest also records the version's storage layout (docs/layout.md): ``tree`` (the files under
``v/<version>/``) or ``objects`` (the files in the content pool). The layout is not part of the id: the
same build is the same version however it is stored. An objects-layout manifest's content is format 2
(format 1 has no ``layout``), so no reader ever mistakes it for a tree.

A version with URL rules (redirects, response headers: atomicsite.routing) records them in the manifest
and they are part of its id, so a rollback rolls them back too. Such a manifest is written as format 2;
a version without rules is written exactly as before (format 1, same id), so existing targets keep
their ids and older atomicsite releases keep reading them. Every format this code has written is read.

A file with compressed variants (atomicsite.compress) records them (encoding → sha256, size, MD5);
a manifest with any is content format 4 (format 2 plus ``variants`` per file entry). Which encodings
a file has is part of the id; the variants' hashes are not. Without variants nothing changes.

How a manifest is stored is :mod:`atomicsite.manifest_codec`'s job: new manifests are stored as
format 3 (the same content, ~77 bytes per file instead of ~267 on the synthetic site), with the same
version id. ``to_dict`` is the content (format 1 or 2 shaped); ``to_json`` the stored bytes;
``from_json`` reads every format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property

from . import __version__, manifest_codec
from .errors import IntegrityError
from .layout import LAYOUTS, TREE, VERSION_RE
from .routing.site import SiteRules

FORMAT = 1  # a manifest without rules
FORMAT_RULES = 2  # the same, plus "rules" (redirects and response headers), part of the version id
FORMAT_VARIANTS = 4  # format 2, plus compressed "variants" per file (3 is the stored envelope's number)
CONTENT = (FORMAT, FORMAT_RULES, FORMAT_VARIANTS)  # what a manifest can hold
STORED = manifest_codec.STORED_FORMAT  # how new manifests are stored (3): any content, packed
READABLE = (*CONTENT, *manifest_codec.STORED_FORMATS)
ID_LENGTH = 16


@dataclass(frozen=True)
class Variant:
    """A compressed copy of a file (atomicsite.compress): its encoding and what proves its bytes."""

    encoding: str  # "br" | "gzip"
    sha256: str
    size: int
    md5: str

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "md5": self.md5}


@dataclass(frozen=True)
class FileEntry:
    """One file of a version. ``md5`` is kept because S3 and GCS listings prove bytes by MD5."""

    path: str
    sha256: str
    size: int
    md5: str
    content_type: str
    cache_control: str
    variants: tuple[Variant, ...] = ()  # in atomicsite.compress.ENCODINGS order

    def identity(self) -> list:
        # Which encodings a file has is part of the id (they change what is stored and served);
        # their hashes are not: another compressor release may make other bytes of the same content.
        ident = [self.path, self.sha256, self.size, self.content_type, self.cache_control]
        return ident + [[v.encoding for v in self.variants]] if self.variants else ident

    def variant(self, encoding: str) -> Variant | None:
        return next((v for v in self.variants if v.encoding == encoding), None)

    def as_variant(self, v: Variant) -> FileEntry:
        """The variant as an object of its own: at ``<path>.br``/``.gz``, with the file's headers."""
        from .compress import variant_path

        return FileEntry(variant_path(self.path, v.encoding), v.sha256, v.size, v.md5, self.content_type,
                         self.cache_control)


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def version_id(files: Iterable[FileEntry], rules: SiteRules | None = None) -> str:
    table = sorted(f.identity() for f in files)
    # Without rules the id is the hash of the table alone, exactly as before rules existed.
    hashed = {"files": table, "rules": rules.to_dict()} if rules else table
    return hashlib.sha256(canonical_json(hashed)).hexdigest()[:ID_LENGTH]


def utcnow() -> str:
    """UTC time with milliseconds, so versions published in the same second still sort."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Manifest:
    version: str
    created: str
    files: tuple[FileEntry, ...]
    source: dict = field(default_factory=dict)
    message: str | None = None
    tool: str = f"atomicsite {__version__}"
    format: int = FORMAT
    rules: SiteRules = field(default_factory=SiteRules)
    layout: str = TREE

    @classmethod
    def build(cls, files: Iterable[FileEntry], *, source: dict | None = None, message: str | None = None,
              rules: SiteRules | None = None, layout: str = TREE) -> Manifest:
        files = tuple(sorted(files, key=lambda f: f.path))
        rules = rules or SiteRules()
        return cls(version=version_id(files, rules), created=utcnow(), files=files, source=dict(source or {}),
                   message=message, format=STORED, rules=rules, layout=layout)

    @cached_property
    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @cached_property
    def stored(self) -> tuple[tuple[FileEntry, str | None], ...]:
        """Every object the version stores: each file ``(entry, None)``, then each compressed variant
        as ``(entry at <path>.br/.gz, encoding)`` (atomicsite.compress). Publish and verify walk this."""
        out: list[tuple[FileEntry, str | None]] = [(f, None) for f in self.files]
        out += [(f.as_variant(v), v.encoding) for f in self.files for v in f.variants]
        return tuple(out)

    @cached_property
    def stored_by_path(self) -> dict[str, FileEntry]:
        """:attr:`stored` by path in the version's tree (a variant at ``<path>.br``)."""
        return {e.path: e for e, _ in self.stored}

    @cached_property
    def stored_extra(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """Content-Disposition / Content-Language the version's ``_headers`` rules give each stored
        object (a variant gets its file's), for stores whose objects carry them; empty without rules."""
        if not self.rules.headers:
            return {}
        from .routing.build import STORED_EXTRA, object_headers

        out = {}
        for f in self.files:
            found = tuple(sorted(object_headers(self.rules.headers, f.path, STORED_EXTRA).items()))
            if found:
                out[f.path] = found
                for v in f.variants:
                    out[f.as_variant(v).path] = found
        return out

    @property
    def has_variants(self) -> bool:
        return any(f.variants for f in self.files)

    def to_dict(self) -> dict:
        d = self.head_dict()
        # Field by field (_entry_dict), not dataclasses.asdict, which deep-copies every value: 50,000
        # files took ~1.5 s that way, for a table that is only read.
        d["files"] = {f.path: _entry_dict(f) for f in self.files}
        return d

    def head_dict(self) -> dict:
        """:meth:`to_dict` without the file table (what summaries carry)."""
        fmt = FORMAT_RULES if self.rules or self.layout != TREE else FORMAT
        d = {
            "format": FORMAT_VARIANTS if self.has_variants else fmt,
            "version": self.version,
            "created": self.created,
            "message": self.message,
            "source": self.source,
            "tool": self.tool,
        }
        if self.rules:
            d["rules"] = self.rules.to_dict()
        if self.layout != TREE:
            d["layout"] = self.layout
        return d

    def to_json(self) -> bytes:
        """The bytes to store: format 3 (:mod:`atomicsite.manifest_codec`)."""
        d = self.to_dict()
        return manifest_codec.encode(d) if manifest_codec.encodable(d) else canonical_json(d)

    @classmethod
    def from_json(cls, data: bytes, *, where: str, expect_version: str | None = None) -> Manifest:
        """Parse and validate; any defect is an IntegrityError naming ``where``."""

        def corrupt(why: str) -> IntegrityError:
            return IntegrityError(
                f"corrupt manifest {where}: {why}",
                hint="Publish its build dir again to rewrite it, or prune it; no channel can be pointed at it until then.",
            )

        try:
            stored, raw = manifest_codec.decode(data)
        except manifest_codec.CodecError as exc:
            raise corrupt(str(exc)) from None
        fmt = raw.get("format")  # the content's format, whichever way it was stored
        if fmt not in CONTENT or isinstance(fmt, bool):
            raise corrupt(f"unknown format {fmt!r} (this atomicsite reads formats {', '.join(map(str, READABLE))}; "
                          f"a newer atomicsite may have written it)")
        version = raw.get("version")
        if not isinstance(version, str) or not VERSION_RE.match(version):
            raise corrupt(f"bad version id {version!r}")
        table = raw.get("files")
        if not isinstance(table, dict) or not table:
            raise corrupt("no file table")
        # A format-3/5 table comes from the codec, which checked every column's types and that the
        # paths are sorted and unique; a plain JSON one is checked (and sorted) here.
        packed = stored in manifest_codec.STORED_FORMATS
        text, size = (_same, _same) if packed else (_str, _int)
        try:
            files = tuple(
                FileEntry(path, text(e["sha256"]), size(e["size"]), text(e["md5"]), text(e["content_type"]),
                          text(e["cache_control"]), _variants(e.get("variants")) if fmt == FORMAT_VARIANTS else ())
                for path, e in (table.items() if packed else sorted(table.items()))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise corrupt(f"bad file entry ({exc!r})") from None
        rules = SiteRules()
        if fmt in (FORMAT_RULES, FORMAT_VARIANTS) and "rules" in raw:
            try:
                rules = SiteRules.from_dict(raw.get("rules"))
            except ValueError as exc:
                raise corrupt(str(exc)) from None
        layout = raw.get("layout", TREE)
        if layout not in LAYOUTS or (layout != TREE and fmt == FORMAT):
            raise corrupt(f"unknown layout {layout!r}")
        if version_id(files, rules) != version:
            raise corrupt(f"its file table does not hash to its version id {version}")
        if expect_version and version != expect_version:
            raise corrupt(f"it names version {version}, expected {expect_version}")
        created = raw.get("created")
        if not isinstance(created, str):
            raise corrupt("no created time")
        source = raw.get("source", {})
        if not isinstance(source, dict):
            raise corrupt("source is not an object")
        message, tool = raw.get("message"), raw.get("tool", "")
        if not isinstance(message, (str, type(None))) or not isinstance(tool, str):
            raise corrupt("message or tool is not a string")
        return cls(
            version=version,
            created=created,
            files=files,
            source=source,
            message=message,
            tool=tool,
            format=stored,
            rules=rules,
            layout=layout,
        )


def _entry_dict(f: FileEntry) -> dict:
    d = {"sha256": f.sha256, "size": f.size, "md5": f.md5, "content_type": f.content_type,
         "cache_control": f.cache_control}
    if f.variants:
        d["variants"] = {v.encoding: v.to_dict() for v in f.variants}
    return d


def _variants(table) -> tuple[Variant, ...]:
    from .compress import ENCODINGS

    if table is None:
        return ()
    if not isinstance(table, dict) or not table:
        raise TypeError(f"expected variants by encoding, got {table!r}")
    unknown = set(table) - set(ENCODINGS)
    if unknown:
        raise ValueError(f"unknown encoding {sorted(unknown)[0]!r}")
    return tuple(Variant(enc, _str(table[enc]["sha256"]), _int(table[enc]["size"]), _str(table[enc]["md5"]))
                 for enc in ENCODINGS if enc in table)


def _same(v):
    return v


def _str(v) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {v!r}")
    return v


def _int(v) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise TypeError(f"expected a size, got {v!r}")
    return v
