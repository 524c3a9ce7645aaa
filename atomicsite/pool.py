"""The objects pool of the objects layout, and its garbage collection.

Each distinct content of an objects-layout version is stored once, at ``_atomicsite/objects/<sha256>``;
a version is its manifest. An object may be deleted only when no committed manifest references it.
Prune collects under the same lease as version deletion (atomicsite.claims), with the lease's
``pool`` flag set: an objects-layout publish that sees the flag stays away (it would rely on objects
it found in the pool), and prune, after writing the lease, leaves the pool alone while any such
publish holds a claim, then computes what is referenced from the manifests as they are *after* the
lease was written. So whichever of the two comes second sees the other: an object a new manifest
references is never collected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .claims import Claim
from .layout import POOL, sha_of_pool_key
from .manifest import Manifest
from .stores.base import Store


@dataclass
class PoolPlan:
    """Pool objects no kept manifest references, past the grace period (the dry run shows these)."""

    unused: list[str] = field(default_factory=list)  # keys
    young: int = 0  # unused but inside the grace period (a publish may be about to reference them)
    held: str = ""  # why the pool is left alone this run, if it is
    bytes: int = 0


def referenced(manifests) -> set[str]:
    # compressed variants are pool objects of their own (atomicsite.compress)
    return {f.sha256 for m in manifests if m is not None and m.layout == "objects" for f, _ in m.stored}


def plan_pool(store: Store, kept: list[str], read: Callable[[str], Manifest | None], *, now: datetime,
              grace: float) -> PoolPlan:
    """``kept``: every version that stays; ``read`` gives its manifest (None for one that could not be
    read). Kept manifests are read only when the pool holds anything: a tree-only target reads none."""
    plan = PoolPlan()
    pooled = [(sha, info) for info in store.list(POOL) if (sha := sha_of_pool_key(info.key))]
    if not pooled:
        return plan
    manifests = [read(v) for v in kept]
    if any(m is None for m in manifests):
        plan.held = "a kept manifest could not be read, so what it references is unknown"
        return plan
    used = referenced(manifests)
    for sha, info in pooled:
        if sha in used:
            continue
        if now - (info.modified or now) < timedelta(seconds=grace):
            plan.young += 1
            continue
        plan.unused.append(info.key)
        plan.bytes += info.size
    return plan


def still_unused(plan: PoolPlan, claims: list[Claim], manifests_now: list[Manifest | None]) -> tuple[list[str], str]:
    """Under the lease: the planned keys no manifest references now, or none while a publish that
    reads the pool holds a claim (then the reason)."""
    busy = [c for c in claims if c.uses_pool and not c.expired]
    if busy:
        return [], f"left alone: {busy[0].describe()} is using the pool"
    if any(m is None for m in manifests_now):
        return [], "left alone: a manifest could not be read"
    used = referenced(manifests_now)
    return [k for k in plan.unused if sha_of_pool_key(k) not in used], ""
