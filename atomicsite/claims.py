"""Claims and the prune lease: how prune and the commands that use a version stay out of each other's way.

Prune deletes versions; publish, promote, pin and rollback bring versions (back) into use. Across
processes and machines they share nothing but the store, so they follow a flag protocol over it
(docs/layout.md, "Prune and concurrent commands"):

- A **writer** (publish, promote, pin, rollback) first writes a *claim* naming the version it is about
  to use (``_atomicsite/claims/<version>.<nonce>.json``), then reads the *prune lease*. If the lease
  names that version, the writer withdraws its claim and waits for that prune to finish, or refuses.
  Otherwise it goes on, keeps the claim until the channel pointer names the version, then withdraws it.
- **Prune** first writes the lease (``_atomicsite/prune-lease.json``, one prune at a time) naming every
  version whose objects it will delete, then reads the claims, then every pointer and manifest, and
  spares each doomed version that any of them names. It deletes only what is left, while it holds
  the lease, and removes the lease last.

Each side writes before it reads, and the stores are strongly consistent, so whichever writes second
reads the other's mark: the writer sees the lease and stays away, or prune sees the claim (or, once
the writer has switched and withdrawn it, the pointer) and spares the version. It is Dekker's flag
protocol; the objects layout's pool is guarded the same way (atomicsite.pool). No clock is involved except to expire the marks of processes that died: a claim lives
:data:`CLAIM_TTL` and is refreshed while its command runs, the lease :data:`LEASE_TTL`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from .channels import actor
from .errors import AlreadyExists, AtomicsiteError, ConflictError, ObjectNotFound, PreconditionFailed
from .layout import VERSION_RE
from .manifest import canonical_json, parse_time, utcnow
from .stores.base import IfMatch, Store, WriteMode

CLAIMS = "_atomicsite/claims/"
LEASE_KEY = "_atomicsite/prune-lease.json"
FORMAT = 1
CLAIM_TTL = 3600.0
"""Seconds a claim stays valid without a refresh; a command refreshes its claim every quarter of it."""
LEASE_TTL = 900.0
"""Seconds the prune lease stays valid without a refresh; prune refreshes it every quarter of it and
stops deleting once half of it has passed since the last refresh it knows landed."""


def _age(modified: datetime | None, at: str | None) -> float:
    """Seconds since a mark was written, by the store's timestamp (else the writer's own)."""
    when = modified
    if when is None and at:
        with contextlib.suppress(ValueError):
            when = parse_time(at)
    if when is None:
        return 0.0
    return (datetime.now(timezone.utc) - when).total_seconds()


@dataclass(frozen=True)
class Claim:
    """A writer's claim as prune reads it back."""

    key: str
    version: str
    action: str
    by: str
    at: str
    ttl: float
    age: float
    uses_pool: bool = False

    @property
    def expired(self) -> bool:
        return self.age > self.ttl

    def describe(self) -> str:
        return f"{self.action} by {self.by} (started {self.at})"


def read_claims(store: Store) -> list[Claim]:
    """Every claim on the target, live or expired (an unreadable one counts as live, for its TTL)."""
    out = []
    for info in store.list(CLAIMS):
        name = info.key[len(CLAIMS):]
        version = name.split(".", 1)[0]
        if not VERSION_RE.match(version):
            continue
        try:
            raw = json.loads(store.get(info.key).data)
            claim = Claim(info.key, version, str(raw.get("action", "?")), str(raw.get("by", "?")),
                          str(raw.get("at", "")), float(raw.get("ttl", CLAIM_TTL)), 0.0, raw.get("pool") is True)
        except ObjectNotFound:
            continue  # withdrawn between the listing and the read
        except (ValueError, TypeError, AttributeError):
            claim = Claim(info.key, version, "?", "?", "", CLAIM_TTL, 0.0, True)
        out.append(Claim(**{**claim.__dict__, "age": _age(info.modified, claim.at)}))
    return out


@dataclass(frozen=True)
class Lease:
    """The prune lease as a writer reads it."""

    by: str
    at: str
    doomed: frozenset[str]
    ttl: float
    age: float
    token: str | None
    pool: bool = False  # unused objects of the pool are being collected

    @property
    def expired(self) -> bool:
        return self.age > self.ttl


def read_lease(store: Store) -> Lease | None:
    try:
        body = store.get(LEASE_KEY)
    except ObjectNotFound:
        return None
    try:
        raw = json.loads(body.data)
        doomed = frozenset(str(v) for v in raw["doomed"])
        by, at, ttl = str(raw.get("by", "?")), str(raw.get("at", "")), float(raw.get("ttl", LEASE_TTL))
        pool = raw.get("pool") is True
    except (ValueError, TypeError, KeyError, AttributeError):
        # A lease we cannot read could doom anything: treat it as dooming everything until it expires.
        by, at, ttl, doomed, pool = "?", "", LEASE_TTL, frozenset({"*"}), True
    return Lease(by, at, doomed, ttl, _age(body.info.modified, at), body.info.token, pool)


def _dooms(lease: Lease | None, version: str, uses_pool: bool) -> bool:
    return lease is not None and (version in lease.doomed or "*" in lease.doomed or (uses_pool and lease.pool))


class VersionClaim:
    """A writer's claim on ``version``, held from before it reads what is stored until the pointer names it.

    >>> with VersionClaim(store, version, "publish", wait=60) as claim:   # doctest: +SKIP
    ...     ...                      # read the manifest, upload, commit
    ...     claim.ensure_held()      # right before the pointer write
    ...     write_pointer(...)
    """

    def __init__(self, store: Store, version: str, action: str, *, wait: float = 0.0, ttl: float = CLAIM_TTL,
                 uses_pool: bool = False):
        self.store, self.version, self.action, self.wait, self.ttl = store, version, action, wait, ttl
        self.uses_pool = uses_pool  # an objects-layout publish: it relies on what it found in the pool
        self.key = f"{CLAIMS}{version}.{secrets.token_hex(6)}.json"
        self._refreshed = 0.0  # monotonic time the last claim write that landed was sent
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        body = canonical_json({"format": FORMAT, "version": self.version, "action": self.action, "by": actor(),
                               "at": utcnow(), "ttl": self.ttl, "pool": self.uses_pool})
        sent = time.monotonic()
        self.store.put(self.key, body, content_type="application/json", cache_control="no-store")
        self._refreshed = sent

    def __enter__(self) -> VersionClaim:
        deadline = time.monotonic() + self.wait
        while True:
            self._write()
            lease = read_lease(self.store)
            if not _dooms(lease, self.version, self.uses_pool):
                break
            self._withdraw()
            if time.monotonic() >= deadline:
                what = ("unused objects are being collected" if self.version not in lease.doomed
                        and "*" not in lease.doomed else f"version {self.version} is being deleted")
                who = (f"a prune that {lease.by} started at {lease.at}" if lease.at
                       else f"a prune whose lease {LEASE_KEY} cannot be read")
                raise ConflictError(
                    f"{what} by {who}; nothing was changed.",
                    hint="Re-run when that prune has finished (then the version is uploaded again if needed). "
                    f"If no prune is running, its lease expires {int(max(0, lease.ttl - lease.age))} s from now "
                    "and the next 'atomicsite prune' finishes the job.",
                )
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        self._thread = threading.Thread(target=self._keep_alive, name="atomicsite-claim", daemon=True)
        self._thread.start()
        return self

    def _keep_alive(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            with contextlib.suppress(AtomicsiteError):
                self._write()  # a failed refresh shows up in ensure_held()

    def ensure_held(self) -> None:
        """Before the pointer write: the claim must not have lapsed (a refresh failed for half its TTL)."""
        if time.monotonic() - self._refreshed > self.ttl / 2:
            raise ConflictError(
                f"lost the claim on version {self.version}: it could not be refreshed for "
                f"{int(time.monotonic() - self._refreshed)} s, so a prune may have removed objects; nothing was switched.",
                hint="Re-run the command: it checks every object again and re-uploads what is missing.",
            )

    def _withdraw(self) -> None:
        with contextlib.suppress(AtomicsiteError):
            self.store.delete_many([self.key])

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._withdraw()


class PruneLease:
    """Prune's exclusive lease, naming the versions whose objects it is about to delete."""

    def __init__(self, store: Store, doomed: list[str], *, pool: bool = False, ttl: float = LEASE_TTL):
        self.store, self.doomed, self.pool, self.ttl = store, sorted(doomed), pool, ttl
        self.token: str | None = None
        self._refreshed = 0.0

    def _body(self) -> bytes:
        return canonical_json({"format": FORMAT, "by": actor(), "at": utcnow(), "ttl": self.ttl, "doomed": self.doomed,
                               "pool": self.pool})

    def _put(self, mode) -> None:
        sent = time.monotonic()
        self.token = self.store.put(LEASE_KEY, self._body(), content_type="application/json",
                                    cache_control="no-store", mode=mode).token
        self._refreshed = sent

    def acquire(self) -> None:
        """Write the lease create-only; take over one whose prune died (expired); else a conflict."""
        try:
            self._put(WriteMode.CREATE)
            return
        except AlreadyExists:
            pass
        held = read_lease(self.store)
        if held is None:  # released between our write and our read
            return self.acquire()
        if not held.expired:
            raise ConflictError(
                f"another prune is running on {self.store.url} (started {held.at or 'at an unknown time'} by {held.by}); "
                "nothing was deleted.",
                hint=f"Wait for it to finish; if it died, its lease expires in {int(max(0, held.ttl - held.age))} s.",
            )
        try:
            self._put(IfMatch(held.token))
        except PreconditionFailed:
            raise ConflictError("another prune took over an expired prune lease at the same moment; nothing was deleted.",
                                hint="Re-run 'atomicsite prune' later.") from None

    def keep_alive(self) -> None:
        """Between deletions: refresh the lease when a quarter of its TTL has passed; stop if it was taken."""
        if time.monotonic() - self._refreshed > self.ttl / 4:
            try:
                self._put(IfMatch(self.token))
            except PreconditionFailed:
                self.token = None  # not ours any more: release() must leave it alone
                raise ConflictError("the prune lease was taken over by another prune; this one stopped.",
                                    hint="Check 'atomicsite versions'; re-run 'atomicsite prune' if needed.") from None
        if time.monotonic() - self._refreshed > self.ttl / 2:
            raise ConflictError("the prune lease could not be refreshed in time; this prune stopped.",
                                hint="Re-run 'atomicsite prune'.")

    def release(self) -> None:
        if self.token is None:
            return
        with contextlib.suppress(AtomicsiteError):
            self.store.delete_many([LEASE_KEY])


__all__ = ["VersionClaim", "PruneLease", "Claim", "Lease", "read_claims", "read_lease", "CLAIMS", "LEASE_KEY"]
