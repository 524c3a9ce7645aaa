"""Shared test helpers: fixture copies, store wrappers that count or fail operations."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from atomicsite.config import Settings
from atomicsite.stores.base import Store

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SETTINGS = Settings(concurrency=8)


def publish(path, store, **kw):
    """``atomicsite.publish`` with test settings and no git provenance."""
    import atomicsite

    return atomicsite.publish(path, store, settings=SETTINGS, source={}, **kw)


def publish_versions(build: Path, store, count: int) -> list[str]:
    """Publish ``count`` versions of ``build``, each with a different index.html; their ids, oldest first."""
    versions = []
    for i in range(count):
        (build / "index.html").write_text(f"version {i}")
        versions.append(publish(build, store).version)
    return versions


def site(tmp_path: Path, name: str = "blog", dest: str | None = None) -> Path:
    """A private copy of a fixture site that the test may change."""
    out = tmp_path / (dest or name)
    shutil.copytree(FIXTURES / name, out)
    return out


OPS = ("put", "get", "open", "head", "list", "copy", "delete_many", "delete")


class Crash(Exception):
    """Stands for the process dying mid-operation (not an AtomicsiteError, so nothing handles it)."""


class OpsStore:
    """Wraps a store; counts every operation and can fail the Nth (1-based) with ``exc``."""

    def __init__(self, inner: Store, *, fail_at: int | None = None, exc: type[BaseException] = Crash,
                 before=None):
        self.inner = inner
        self.url = inner.url
        self.fail_at = fail_at
        self.exc = exc
        self.before = before  # optional callback(op, args) run before each op
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _op(self, name: str, args: tuple) -> None:
        """Record one operation; run ``before``; fail it if it is the ``fail_at``-th."""
        with self._lock:
            self.calls.append((name, str(args[0]) if args else ""))
            n = len(self.calls)
        if self.before:
            self.before(name, args)
        if self.fail_at is not None and n == self.fail_at:
            raise self.exc(f"injected failure at operation {n} ({name} {args[0] if args else ''})")

    def __getattr__(self, name):
        if name in OPS:
            fn = getattr(self.inner, name)

            def call(*args, **kwargs):
                self._op(name, args)
                result = fn(*args, **kwargs)
                return list(result) if name == "list" else result

            return call
        if name == "link_many" and hasattr(self.inner, "link_many"):
            # The local store's bulk link: each link counts (and can fail) as the copy it stands for,
            # so a failure can land midway through the bulk call.
            def link_many(links):
                def each():
                    for src, dst in links:
                        self._op("copy", (src, dst))
                        yield src, dst

                return self.inner.link_many(each())

            return link_many
        return getattr(self.inner, name)

    def count(self, *ops: str) -> int:
        return sum(1 for op, _ in self.calls if op in ops)

    def writes(self) -> list[tuple[str, str]]:
        return [(op, key) for op, key in self.calls if op in ("put", "copy", "delete_many", "delete")]
