"""Retries of transient store failures, as a wrapper around any store.

Backends raise :class:`TransientStoreError` for what is worth another try (throttling, 5xx, a reset
connection) and switch their SDK's own retries off, so attempts never multiply: this wrapper is the one
place that retries, with exponential backoff and jitter, a bounded number of times.

A conditional write is retried too. If the first attempt landed but its answer was lost, the retry
fails its precondition; callers that care (the pointer switch) check whether what is stored is what
they wrote (see :func:`atomicsite.channels.write_pointer`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from .errors import TransientStoreError
from .stores.base import Body, ObjectInfo, PutMode, Store, WriteMode

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial: float = 0.2  # seconds before the second attempt
    maximum: float = 8.0  # cap on one wait

    def call(self, fn: Callable[[], T]) -> T:
        # The first attempt runs bare: building a tenacity Retrying costs 15-80 us of CPU a call (more
        # with many threads), which 10,000 copies of a tree publish paid for nothing.
        try:
            return fn()
        except TransientStoreError:
            if self.attempts <= 1:
                raise
        # exponential backoff plus up to one base interval of jitter, so retries don't synchronise:
        # before attempt n, min(initial * 2**(n-2), maximum) + jitter
        time.sleep(min(self.initial, self.maximum) + random.uniform(0, self.initial))
        retrying = Retrying(
            retry=retry_if_exception_type(TransientStoreError),
            stop=stop_after_attempt(self.attempts - 1),
            wait=wait_exponential(multiplier=2 * self.initial, max=self.maximum) + wait_random(0, self.initial),
            reraise=True,
        )
        return retrying(fn)


class RetryingStore:
    """``RetryingStore(store, RetryPolicy(attempts=5))``: the same store, retrying transient errors."""

    def __init__(self, inner: Store, policy: RetryPolicy | None = None):
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.url = inner.url
        self.retries = 0

    def __getattr__(self, name):  # backend extras (http_stats, live_link_target, …) pass through
        return getattr(self.inner, name)

    def _call(self, fn: Callable[[], T]) -> T:
        attempt = 0

        def once() -> T:
            nonlocal attempt
            attempt += 1
            if attempt > 1:
                self.retries += 1
            return fn()

        return self.policy.call(once)

    def put(self, key: str, source: bytes | Path, *, content_type=None, cache_control=None, metadata=None,
            mode: PutMode = WriteMode.OVERWRITE, extra_headers=None) -> ObjectInfo:
        extra = {"extra_headers": extra_headers} if extra_headers else {}
        return self._call(lambda: self.inner.put(key, source, content_type=content_type, cache_control=cache_control,
                                                 metadata=metadata, mode=mode, **extra))

    def get(self, key: str) -> Body:
        return self._call(lambda: self.inner.get(key))

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self._call(lambda: self.inner.open(key, start, end))

    def head(self, key: str) -> ObjectInfo:
        return self._call(lambda: self.inner.head(key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # Materialise so a transient failure on page N retries the listing, not half of it.
        return iter(self._call(lambda: list(self.inner.list(prefix))))

    def copy(self, src: str, dst: str, *, content_type=None, cache_control=None, metadata=None,
             size=None, extra_headers=None) -> ObjectInfo:
        extra = {"extra_headers": extra_headers} if extra_headers else {}
        return self._call(lambda: self.inner.copy(src, dst, content_type=content_type, cache_control=cache_control,
                                                  metadata=metadata, size=size, **extra))

    def delete_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._call(lambda: self.inner.delete_many(keys))

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        # A retried conditional delete whose first attempt landed finds the object gone and fails its
        # precondition; callers re-read to tell "we deleted it" from "someone changed it".
        self._call(lambda: self.inner.delete(key, if_match=if_match))

    def close(self) -> None:
        self.inner.close()
