"""Per-version summary records: what listings show, without downloading any manifest.

``versions`` shows, per version, when it was made, how many files and bytes, its source and message.
Reading that from the manifests costs every manifest of the target on every call (50 versions of a
10,000-file site: ~3.6 MB in format 3, ~13 MB in format 1). So publish writes a summary of a few
hundred bytes next to each manifest::

    _atomicsite/summaries/<version>.json
    {"format": 1, "version": "…", "created": "…", "files": 10000, "bytes": 80600000,
     "source": {…}, "message": "…", … every other top-level field of the manifest (tool, layout, …)}

The manifest stays the commit point: the summary is written just BEFORE it, so a crash between the
two leaves a summary whose version has no manifest, i.e. an uncommitted version, which every reader
ignores (they list manifests, then look up summaries) and prune cleans after the grace period like any
partial upload. Versions committed before summaries existed have none: readers fall back to their
manifest and write the missing summary, best effort (a read-only credential just skips it).

A summary is a cache of its manifest's top-level fields, not a proof: ``verify`` reads the manifest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .errors import AtomicsiteError, IntegrityError, ObjectNotFound
from .layout import SUMMARIES, VERSION_RE, manifest_key, summary_key
from .manifest import Manifest, canonical_json
from .stores.base import Store
from .targets import read_manifest

log = logging.getLogger("atomicsite.summaries")

FORMAT = 1
# Manifest fields a summary does not carry: the table (summarised as files/bytes), rules (can be long).
_NOT_SUMMARISED = ("files", "rules", "format")
_FIELDS = ("version", "created", "files", "bytes", "source", "message")


@dataclass(frozen=True)
class Summary:
    version: str
    created: str
    files: int
    bytes: int
    source: dict = field(default_factory=dict)
    message: str | None = None
    extra: dict = field(default_factory=dict)  # the manifest's other top-level fields: tool, layout, …

    @classmethod
    def of(cls, manifest: Manifest) -> Summary:
        d = manifest.head_dict()  # not to_dict: a summary never needs the file table
        extra = {k: v for k, v in d.items() if k not in _NOT_SUMMARISED and k not in _FIELDS}
        return cls(manifest.version, manifest.created, len(manifest.files), manifest.total_bytes,
                   dict(manifest.source), manifest.message, extra)

    def to_dict(self) -> dict:
        """Flat: version, created, files, bytes, source, message, then the extra fields."""
        return {**self.extra, "version": self.version, "created": self.created, "files": self.files,
                "bytes": self.bytes, "source": self.source, "message": self.message}

    def to_json(self) -> bytes:
        return canonical_json({**self.to_dict(), "format": FORMAT})

    @classmethod
    def from_json(cls, data: bytes, *, expect_version: str) -> Summary:
        """Parse and check every field; ValueError says what is wrong."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} summary")
        v, created, files, size = raw.get("version"), raw.get("created"), raw.get("files"), raw.get("bytes")
        source, message = raw.get("source", {}), raw.get("message")
        if v != expect_version:
            raise ValueError(f"it names version {v!r}, expected {expect_version}")
        if not isinstance(created, str) or not isinstance(source, dict) or not isinstance(message, (str, type(None))):
            raise ValueError("bad created, source or message")
        if any(type(n) is not int or n < 0 for n in (files, size)):
            raise ValueError("bad files or bytes count")
        extra = {k: val for k, val in raw.items() if k not in _FIELDS and k != "format"}
        return cls(v, created, files, size, source, message, extra)


def write_summary(store: Store, manifest: Manifest) -> None:
    """Publish's commit step calls this just before writing the manifest (see the module docstring)."""
    store.put(summary_key(manifest.version), Summary.of(manifest).to_json(),
              content_type="application/json", cache_control="no-store")


def resync_summary(store: Store, version: str) -> None:
    """Rewrite the summary from the committed manifest (a concurrent publish of the same version
    committed its own time and message); best effort, like a backfill."""
    try:
        _from_manifest(store, version)
    except AtomicsiteError as exc:
        log.info("could not resync the summary of %s: %s", version, exc)


def read_summary(store: Store, version: str) -> Summary | None:
    """The stored summary, or None when there is none or it is unreadable (callers fall back)."""
    try:
        return Summary.from_json(store.get(summary_key(version)).data, expect_version=version)
    except ObjectNotFound:
        return None
    except ValueError as exc:
        log.warning("ignoring the summary of %s: %s", version, exc)
        return None


def _from_manifest(store: Store, version: str) -> Summary:
    """Read the whole manifest (ObjectNotFound, IntegrityError propagate) and backfill its summary."""
    summary = Summary.of(read_manifest(store, version))
    try:
        store.put(summary_key(version), summary.to_json(), content_type="application/json", cache_control="no-store")
    except AtomicsiteError as exc:  # read-only credentials, a store hiccup: the listing still works
        log.info("could not write the missing summary of %s: %s", version, exc)
    return summary


def summary_of(store: Store, version: str) -> Summary:
    """The summary of a committed version: its record if stored, else from its manifest.

    The manifest is still HEAD-checked, so a version that is not committed is an ObjectNotFound here,
    exactly as reading its manifest would be.
    """
    summary = read_summary(store, version)
    if summary is None:
        return _from_manifest(store, version)
    store.head(manifest_key(version))
    return summary


def summaries(store: Store, versions: Iterable[str], *, workers: int = 8) -> dict[str, Summary | None]:
    """Summaries of committed ``versions`` (listed by the caller from the manifests). One listing of
    the summaries, then one small GET per version that has one; a version without one (or with a bad
    one) costs its manifest once, and is backfilled. None: its manifest is corrupt or vanished."""
    versions = list(versions)
    stored = {info.key[len(SUMMARIES):-len(".json")] for info in store.list(SUMMARIES) if info.key.endswith(".json")}

    def one(v: str) -> Summary | None:
        s = read_summary(store, v) if v in stored else None
        if s is not None:
            return s
        try:
            return _from_manifest(store, v)
        except (IntegrityError, ObjectNotFound):
            return None

    if not versions:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(versions)))) as pool:
        return dict(zip(versions, pool.map(one, versions)))


def orphaned(store: Store, committed: set[str], spare: set[str], now: datetime, grace: float) -> list[str]:
    """Keys of summaries whose version has no manifest (never committed, or pruned half-way) and are
    older than ``grace`` seconds, except those of versions in ``spare`` (claimed or pointed at)."""
    out = []
    for info in store.list(SUMMARIES):
        v = info.key[len(SUMMARIES):-len(".json")] if info.key.endswith(".json") else ""
        if not VERSION_RE.match(v) or v in committed or v in spare:
            continue
        if now - (info.modified or now) >= timedelta(seconds=grace):
            out.append(info.key)
    return out


__all__ = ["Summary", "write_summary", "resync_summary", "read_summary", "summary_of", "summaries", "orphaned"]
