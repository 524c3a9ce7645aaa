"""What the router keeps in memory: channel pointers (for a short TTL), manifests and small bodies.

Every store call is blocking, so it runs on the router's thread pool. Concurrent requests that need the
same pointer or manifest share one read (one future per key), so a burst after the TTL expires costs
one store read, not one per request. The futures are ``concurrent.futures`` ones, so the caches work
whatever event loop (or several) the app runs on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from ..channels import ChannelPointer, read_pointer
from ..errors import AtomicsiteError, ObjectNotFound
from ..layout import manifest_key
from ..manifest import Manifest
from ..stores.base import Store

log = logging.getLogger("atomicsite.serve")


@dataclass(frozen=True)
class Channel:
    """A channel as last read: its pointer (None: nothing published yet) and the versions it served."""

    name: str
    pointer: ChannelPointer | None
    recent: tuple[str, ...] = ()
    """Live first, then the versions of the pointer's history, newest first: the only ones a pin may name."""

    @classmethod
    def of(cls, name: str, pointer: ChannelPointer | None) -> Channel:
        if pointer is None:
            return cls(name, None)
        seen: dict[str, None] = {pointer.version: None}
        if pointer.previous:
            seen.setdefault(pointer.previous)
        for switch in pointer.history:
            for v in (switch.version, switch.previous):
                if v:
                    seen.setdefault(v)
        return cls(name, pointer, tuple(seen))


class _Slot:
    __slots__ = ("key", "value", "weight", "at", "error", "error_at", "inflight", "loading_since")

    def __init__(self, key: str):
        self.key = key
        self.value = None
        self.weight = 0  # what value counts against _Shared.max_weight
        self.at = 0.0  # monotonic time the read that produced value started
        self.error: BaseException | None = None
        self.error_at = 0.0
        self.inflight: Future | None = None
        self.loading_since = 0.0


class _Shared:
    """A bounded LRU of slots whose loads are shared by all waiters: at most ``limit`` slots and, when
    ``weigh`` is given, values weighing at most ``max_weight`` in all (the newest value always stays,
    however heavy: evicting it would cost a store read per request)."""

    def __init__(self, executor: Executor, limit: int, *, weigh: Callable[[object], int] | None = None,
                 max_weight: int = 0):
        self.executor = executor
        self.limit = limit
        self.weigh = weigh
        self.max_weight = max_weight
        self.weight = 0
        self.lock = threading.RLock()
        self.slots: OrderedDict[str, _Slot] = OrderedDict()

    def slot(self, key: str) -> _Slot:
        """The slot for key (caller holds the lock), created and the oldest evicted as needed."""
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = _Slot(key)
            while len(self.slots) > self.limit:
                self.drop(next(iter(self.slots)))
        else:
            self.slots.move_to_end(key)
        return slot

    def drop(self, key: str) -> None:
        """Forget a slot (caller holds the lock); waiters on its load still get the result."""
        slot = self.slots.pop(key, None)
        if slot is not None:
            self.weight -= slot.weight
            slot.weight = 0

    def _weighed(self, slot: _Slot) -> None:
        """Account for a slot's new value, evicting the least recently used others while over weight."""
        if self.weigh is None or self.slots.get(slot.key) is not slot:
            return  # not weighed, or evicted while it loaded: nothing to account for
        weight = self.weigh(slot.value)
        self.weight += weight - slot.weight
        slot.weight = weight
        for key in list(self.slots):
            if self.weight <= self.max_weight:
                break
            if key != slot.key:
                self.drop(key)

    def load(self, slot: _Slot, fn: Callable[[], object]) -> Future:
        """Start ``fn`` unless a load of this slot is already running (caller holds the lock)."""
        if slot.inflight is None:
            started = slot.loading_since = time.monotonic()

            def settle(fut: Future) -> None:
                with self.lock:
                    slot.inflight = None
                    if fut.exception() is None:
                        slot.value, slot.at, slot.error = fut.result(), started, None
                        self._weighed(slot)
                    else:
                        slot.error, slot.error_at = fut.exception(), time.monotonic()

            fut = slot.inflight = self.executor.submit(fn)
            fut.add_done_callback(settle)  # runs right here, under our lock, if fn already finished
            return fut
        return slot.inflight


class PointerCache:
    """``await pointers.get("live")`` → Channel, never older than ``ttl`` when the store answers.

    The promise (docs/serve.md): a request answered at time T used a pointer whose read *started*
    after T − ttl, so a switch reaches every replica within ``ttl`` plus one store read, busy or idle.
    To keep busy replicas from waiting on the store, a pointer past half its TTL is re-read in the
    background while it is still served; past the full TTL the request waits for the read (shared
    with every other request that needs it). An idle replica thus pays one store read on its first
    request, and never serves a pointer from before its quiet period.

    When the store fails or a read hangs, the last good pointer keeps being served (logged, and
    reported by the health endpoint so a load balancer can take the replica out) rather than taking
    the site down: a failed read is retried after a TTL, and a read that takes longer than
    ``max_wait`` stops holding requests up. With no good pointer yet the error propagates (a 502).
    """

    refresh_ahead = 0.5  # fraction of the TTL after which a served pointer is re-read in the background
    max_wait = 2.0  # seconds a request waits for a pointer read before it takes the last good pointer
    min_forced_interval = 0.2  # seconds between reads forced by a vanished live version

    def __init__(self, store: Store, ttl: float, executor: Executor, limit: int):
        self.store = store
        self.ttl = ttl
        self.shared = _Shared(executor, limit)
        self.on_read: Callable[[str, Channel, float], None] | None = None  # (name, channel, seconds)

    def _read(self, name: str) -> Channel:
        started = time.perf_counter()
        channel = Channel.of(name, read_pointer(self.store, name).pointer)
        if self.on_read is not None:
            self.on_read(name, channel, time.perf_counter() - started)
        return channel

    def status(self, name: str) -> tuple[Channel | None, float, BaseException | None, float]:
        """(last good channel, monotonic start of its read, last error, when) for the health check."""
        with self.shared.lock:
            slot = self.shared.slots.get(name)
            if slot is None:
                return None, 0.0, None, 0.0
            return slot.value, slot.at, slot.error, slot.error_at

    async def get(self, name: str, *, fresh: bool = False) -> Channel:
        """The channel's pointer; ``fresh``: read it again now (the one held names a pruned version)."""
        now = time.monotonic()
        with self.shared.lock:
            slot = self.shared.slot(name)
            value = slot.value
            age = now - slot.at
            failing = slot.error is not None and now - slot.error_at < self.ttl
            if fresh:
                # at most a few forced reads a second: a pointer that really names a missing
                # version must not cost a store read per request
                fresh = age >= min(self.ttl, self.min_forced_interval)
            if value is not None and not fresh and age < self.ttl:
                if age >= self.ttl * self.refresh_ahead and slot.inflight is None and not failing:
                    self._load(name, slot, value)
                return value
            if failing and slot.inflight is None and not fresh:
                if value is not None:
                    return value  # a re-read failed lately: keep serving, retry after a TTL
                raise slot.error.with_traceback(None)  # a fresh raise: the shared traceback must not grow
            fut = self._load(name, slot, value)
            waited = now - slot.loading_since
        if value is None:
            return await asyncio.wrap_future(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)),
                                          max(0.0, self.max_wait - waited))
        except asyncio.TimeoutError:
            if waited < self.max_wait:  # the requests that waited for it say so; later ones do not
                log.warning("reading the pointer of channel %r takes over %.1fs; still serving %s",
                            name, self.max_wait, value.pointer.version if value.pointer else "nothing")
            return value
        except Exception:
            return value  # logged once, by the read's own callback

    def _load(self, name: str, slot: _Slot, stale: Channel | None) -> Future:
        """Start (or join) the read of ``name`` (caller holds the lock)."""
        starting = slot.inflight is None
        fut = self.shared.load(slot, lambda: self._read(name))
        if starting and stale is not None:
            fut.add_done_callback(lambda f: f.exception() and log.warning(
                "reading the pointer of channel %r failed; still serving %s: %s",
                name, stale.pointer.version if stale.pointer else "nothing", f.exception()))
        return fut


# What one file of a cached manifest costs in memory: its FileEntry, digest strings and by_path entry,
# measured with tracemalloc on the 10,000-file synthetic site (~440 bytes, plus the path itself).
ENTRY_BYTES = 440
MANIFEST_CACHE_BYTES = 256 << 20


def manifest_weight(manifest: Manifest) -> int:
    """Estimated memory of a parsed manifest, in bytes."""
    return sum(ENTRY_BYTES + len(f.path) for f in manifest.files)


class ManifestCache:
    """Manifests by version. Immutable once committed, so kept until evicted (LRU), within ``limit``
    manifests and ``max_bytes`` of estimated memory (a 200,000-file manifest is ~100 MB parsed, so a
    count alone does not bound the router).

    A failed read (missing, corrupt, store down) is remembered for ``retry_after`` seconds, and a
    version found pruned for ``recheck`` seconds, so a stale cookie or a corrupt manifest never costs a
    store read per request.
    """

    retry_after = 1.0

    def __init__(self, store: Store, executor: Executor, limit: int, recheck: float,
                 max_bytes: int = MANIFEST_CACHE_BYTES):
        self.store = store
        self.shared = _Shared(executor, limit, weigh=manifest_weight, max_weight=max_bytes)
        self.recheck = recheck
        self.checked: dict[str, float] = {}  # version → when its manifest was last seen to exist
        self.gone: dict[str, float] = {}  # version → when its manifest was found missing

    def _read(self, version: str) -> Manifest:
        key = manifest_key(version)
        body = self.store.get(key)
        return Manifest.from_json(body.data, where=f"{self.store.url}/{key}", expect_version=version)

    async def get(self, version: str) -> Manifest:
        """The manifest (ObjectNotFound if it is not committed, IntegrityError if corrupt)."""
        with self.shared.lock:
            slot = self.shared.slot(version)
            if slot.value is not None:
                return slot.value
            if slot.error is not None and time.monotonic() - slot.error_at < self.retry_after:
                raise slot.error.with_traceback(None)
            fut = self.shared.load(slot, lambda: self._read(version))
        return await asyncio.wrap_future(fut)

    async def retained(self, version: str) -> Manifest | None:
        """The manifest of a version a client is pinned to, or None once it has been pruned.

        Prune deletes a manifest before the version's objects, so checking the manifest every
        ``recheck`` seconds is enough to stop serving a version that is going away.
        """
        now = time.monotonic()
        if now - self.gone.get(version, -self.recheck) < self.recheck:
            return None
        last = self.checked.get(version)
        try:
            if last is not None and now - last >= self.recheck:
                await asyncio.wrap_future(self.shared.executor.submit(self.store.head, manifest_key(version)))
            manifest = await self.get(version)
        except ObjectNotFound:
            self.forget(version)
            self.gone[version] = now
            return None
        except AtomicsiteError as exc:  # a corrupt or unreachable old version: serve live, not a 502
            log.warning("pinned version %s is unusable, serving live instead: %s", version, exc)
            self.gone[version] = now
            return None
        if last is None or now - last >= self.recheck:
            self.checked[version] = now
        return manifest

    def forget(self, version: str) -> None:
        with self.shared.lock:
            self.shared.drop(version)
        self.checked.pop(version, None)
        if len(self.gone) > 4 * self.shared.limit:  # bounded: forget the oldest
            for old in sorted(self.gone, key=self.gone.get)[: len(self.gone) // 2]:
                del self.gone[old]


class BodyCache:
    """Whole small files by sha256: content-addressed, so an entry can never be stale."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.used = 0
        self.lock = threading.Lock()
        self.items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, sha256: str) -> bytes | None:
        with self.lock:
            data = self.items.get(sha256)
            if data is not None:
                self.items.move_to_end(sha256)
            return data

    def put(self, sha256: str, data: bytes) -> None:
        if len(data) > self.capacity:
            return
        with self.lock:
            if sha256 in self.items:
                return
            self.items[sha256] = data
            self.used += len(data)
            while self.used > self.capacity:
                _, old = self.items.popitem(last=False)
                self.used -= len(old)


def sha256_ok(data: bytes, sha256: str) -> bool:
    return hashlib.sha256(data).hexdigest() == sha256
