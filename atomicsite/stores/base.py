"""The store protocol: the few object verbs every backend speaks.

A store knows nothing of versions, manifests or channels: it puts, gets, heads, lists, copies and
deletes objects under its own root (a bucket prefix or a directory). Keys are POSIX paths relative to
that root (``v/<version>/index.html``). Everything else (retries, request counting, dry runs, fault
injection in tests) wraps a store instead of living inside one.

Errors a store raises (from :mod:`atomicsite.errors`):

- ``ObjectNotFound``: ``get``/``head``/``copy`` of a key that is not there;
- ``AlreadyExists``: ``put(mode=CREATE)`` on an existing key;
- ``PreconditionFailed``: ``put(mode=IfMatch(token))`` or ``delete(key, if_match=token)`` when the
  object's token differs or it is gone;
- ``UnsupportedCondition``: ``delete(key, if_match=token)`` on a store that cannot make a delete
  conditional (an S3-compatible server that ignores ``If-Match`` on DeleteObject); nothing was deleted;
- ``TransientStoreError``: worth retrying (throttling, 5xx, connection reset);
- ``AccessDenied``, ``BucketNotFound``, ``StoreError``: permanent, with a message naming the target.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

SHA256_META = "sha256"
"""User-metadata key under which every object under ``v/`` carries the hex sha256 of its bytes."""

EXTRA_HEADERS = ("content-encoding", "content-disposition", "content-language")
"""Headers besides Content-Type and Cache-Control that an object can carry (``extra_headers``, names
in lower case): S3 and GCS store and serve each of them; the local store keeps none (the manifest and
the router do). ``put(key, data, extra_headers={"content-encoding": "br"})``"""


def check_extra_headers(extra: dict[str, str] | None) -> dict[str, str]:
    """Lower-cased names; an unknown one is a bug in the caller, not a user error."""
    out = {k.lower(): v for k, v in (extra or {}).items()}
    unknown = set(out) - set(EXTRA_HEADERS)
    if unknown:
        raise ValueError(f"a store object cannot carry {sorted(unknown)[0]!r}; it can carry {', '.join(EXTRA_HEADERS)}")
    return out


class WriteMode(enum.Enum):
    OVERWRITE = "overwrite"
    CREATE = "create"  # fail with AlreadyExists when the key exists


@dataclass(frozen=True)
class IfMatch:
    """Write only if the object's current token (ETag / generation / content hash) is ``token``."""

    token: str


PutMode = WriteMode | IfMatch


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object without reading its bytes.

    ``sha256`` is the user metadata when the store returns it (GCS listings, any ``head``), ``md5`` the
    server-computed MD5 when the store has one (a single-part S3 ETag, GCS ``md5Hash``); either proves
    the bytes. ``token`` is what :class:`IfMatch` takes.
    """

    key: str
    size: int
    token: str | None = None
    sha256: str | None = None
    md5: str | None = None
    modified: datetime | None = None
    content_type: str | None = None
    cache_control: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    extra_headers: dict[str, str] = field(default_factory=dict)  # EXTRA_HEADERS the store reported

    def proves(self, *, size: int, sha256: str, md5: str | None) -> bool | None:
        """True/False when this info proves (or disproves) the content; None when it cannot tell.

        The server's MD5 of the bytes is the strongest word and is checked first. An MD5 that differs
        proves nothing (an S3 ETag is not an MD5 under SSE-KMS, and listings cannot say so); then the
        sha256, which is the user metadata written with the object (or, locally, computed from it).
        Write receipts carry no sha256: echoing back what we sent would prove nothing.
        """
        if self.size != size:
            return False
        if self.md5 and md5 and self.md5 == md5:
            return True
        if self.sha256:
            return self.sha256 == sha256
        return None


def trait(store, name: str, default):
    """A fact a store class declares about itself (``LocalStore.link_trees``, ``proves_by_md5``,
    ``keeps_extra_headers``, ``transfer_workers``), seen through a wrapper (``RetryingStore.inner``)."""
    return getattr(getattr(store, "inner", store), name, default)


def proves_by_md5(store) -> bool:
    """Whether ``store`` may prove bytes by MD5 (an S3 ETag, a GCS ``md5Hash``), so a publish needs each
    file's MD5. The local store proves by sha256 alone, so its publish does not compute MD5."""
    return bool(trait(store, "proves_by_md5", True))


@dataclass(frozen=True)
class Body:
    data: bytes
    info: ObjectInfo


@runtime_checkable
class Store(Protocol):
    """Objects under one root. Implementations must be safe to call from many threads at once."""

    url: str
    """The target URL this store serves, for messages (``s3://bucket/prefix``)."""

    def put(
        self,
        key: str,
        source: bytes | Path,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        mode: PutMode = WriteMode.OVERWRITE,
        extra_headers: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Write ``source`` (bytes, or a local file streamed from disk) at ``key``; return what was stored.

        ``extra_headers``: any of :data:`EXTRA_HEADERS` (``{"content-encoding": "gzip"}``), stored as
        the object's own headers where the store has them."""
        ...

    def get(self, key: str) -> Body:
        """Read a whole (small) object: pointers and manifests."""
        ...

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start..end`` (end exclusive, None = to the end) of an object, in chunks."""
        ...

    def head(self, key: str) -> ObjectInfo:
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, paginating as needed, in key order."""
        ...

    def copy(
        self,
        src: str,
        dst: str,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        size: int | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Server-side copy with the destination's headers set explicitly (never inherited), including
        ``extra_headers`` (none given: the copy has none).

        ``size`` is the source's size when the caller knows it (publish does, from the manifest): a
        store whose copy answer lacks the size may report it instead of asking the server first.
        """
        ...

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete keys (missing ones are fine); raise StoreError naming the keys that failed."""
        ...

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete one object; a missing one is fine unless ``if_match`` is given.

        With ``if_match`` (a token from ``get``/``head``/``put``) the delete happens only if the object
        still has that token: PreconditionFailed when it changed or is gone, UnsupportedCondition when
        the store cannot check (then nothing was deleted, and the caller decides whether to delete
        unconditionally). ``store.delete("_atomicsite/channels/pr-12.json", if_match=state.token)``
        """
        ...

    def close(self) -> None:
        ...
