"""An in-memory store: fast unit tests, and the reference for how the protocol behaves."""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import replace
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..errors import AlreadyExists, ObjectNotFound, PreconditionFailed
from .base import Body, IfMatch, ObjectInfo, PutMode, SHA256_META, WriteMode, check_extra_headers


class MemoryStore:
    """``MemoryStore()``; objects live as long as the instance."""

    def __init__(self, name: str = "memory"):
        self.url = f"memory://{name}"
        self._objects: dict[str, tuple[bytes, ObjectInfo]] = {}
        self._lock = threading.Lock()
        self._generation = itertools.count(1)

    def _store(self, key: str, data: bytes, content_type, cache_control, metadata, extra_headers=None) -> ObjectInfo:
        meta = dict(metadata or {})
        info = ObjectInfo(
            key=key,
            size=len(data),
            token=str(next(self._generation)),
            sha256=meta.get(SHA256_META),
            md5=hashlib.md5(data).hexdigest(),
            modified=datetime.now(timezone.utc),
            content_type=content_type,
            cache_control=cache_control,
            metadata=meta,
            extra_headers=check_extra_headers(extra_headers),
        )
        self._objects[key] = (data, info)
        return info

    def put(self, key, source: bytes | Path, *, content_type=None, cache_control=None, metadata=None,
            mode: PutMode = WriteMode.OVERWRITE, extra_headers=None) -> ObjectInfo:
        data = source.read_bytes() if isinstance(source, Path) else bytes(source)
        with self._lock:
            existing = self._objects.get(key)
            if mode is WriteMode.CREATE and existing:
                raise AlreadyExists(f"{key} already exists in {self.url}")
            if isinstance(mode, IfMatch) and (existing is None or existing[1].token != mode.token):
                raise PreconditionFailed(f"{key} changed in {self.url} since it was read")
            return replace(self._store(key, data, content_type, cache_control, metadata, extra_headers), sha256=None)

    def _entry(self, key: str) -> tuple[bytes, ObjectInfo]:
        with self._lock:
            try:
                return self._objects[key]
            except KeyError:
                raise ObjectNotFound(key, f"no object at {key!r} in {self.url}") from None

    def get(self, key: str) -> Body:
        data, info = self._entry(key)
        return Body(data, info)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        data, _ = self._entry(key)
        return iter([data[start:end]])

    def head(self, key: str) -> ObjectInfo:
        return self._entry(key)[1]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._lock:
            infos = [info for key, (_, info) in self._objects.items() if key.startswith(prefix)]
        return iter(sorted(infos, key=lambda i: i.key))

    def copy(self, src, dst, *, content_type=None, cache_control=None, metadata=None, size=None,
             extra_headers=None) -> ObjectInfo:
        data, _ = self._entry(src)
        with self._lock:  # receipts, like a server's, prove bytes by MD5 and do not echo the sha256
            return replace(self._store(dst, data, content_type, cache_control, metadata, extra_headers), sha256=None)

    def delete_many(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._objects.pop(key, None)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        with self._lock:
            existing = self._objects.get(key)
            if if_match is not None and (existing is None or existing[1].token != if_match):
                raise PreconditionFailed(f"{key} changed in {self.url} since it was read")
            self._objects.pop(key, None)

    def close(self) -> None:
        pass
