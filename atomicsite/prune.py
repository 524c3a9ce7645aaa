"""Retention and garbage collection.

Step 0, before anything below: remove expired preview channels (:mod:`atomicsite.previews`), so the
versions only they served become ordinary candidates.

``prune`` keeps the N newest committed versions, every version a channel points at (current or
previous, pinned or not) and every version a running command has claimed; with ``older_than`` only
versions older than that go. Partial uploads (objects under ``v/`` with no manifest) go once they are
older than a grace period. More than ``max_delete`` versions is refused unless ``force``: all or
nothing.

Deleting follows the protocol in :mod:`atomicsite.claims`: take the prune lease naming every doomed
version, then re-read the claims, the pointers and the manifests and spare whatever something started
using meanwhile, then delete each remaining version's manifest before its objects (so a half-pruned
version can never be pointed at), and release the lease last.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .channels import read_all_pointers
from .claims import PruneLease, read_claims
from .config import Settings
from .errors import ObjectNotFound, UsageError
from .layout import PROBES, VERSIONS, VERSION_RE, manifest_key, summary_key
from .manifest import parse_time
from .pool import PoolPlan, plan_pool, still_unused
from .previews import ExpiredChannels, remove_expired_channels
from .stores.base import Store
from .summaries import Summary, summaries
from .summaries import orphaned as orphaned_summaries
from .targets import ManifestMemo, list_manifest_infos, opened


@dataclass
class PrunePlan:
    keep: list[str]
    delete: list[str]  # committed versions to delete
    orphans: list[str]  # uncommitted version prefixes to clean
    young_orphans: list[str]  # partial uploads still inside the grace period
    reasons: dict[str, str] = field(default_factory=dict)
    probes: list[str] = field(default_factory=list)  # leftover conditional-write probe objects (S3)
    stale_claims: list[str] = field(default_factory=list)  # claims of commands that died, past their TTL
    stale_summaries: list[str] = field(default_factory=list)  # summaries with no manifest, past the grace period
    objects: int = 0
    over_limit: bool = False  # more versions than prune.max_delete: the real run needs --force
    pool: PoolPlan = field(default_factory=PoolPlan)  # the objects layout's unused contents

    def to_dict(self) -> dict:
        d = self.__dict__.copy()
        d["pool"] = {"unused": len(self.pool.unused), "bytes": self.pool.bytes, "young": self.pool.young,
                     "held": self.pool.held}
        return d


@dataclass
class PruneResult:
    plan: PrunePlan
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)  # version -> objects deleted (its manifest included)
    spared: dict[str, str] = field(default_factory=dict)  # doomed version -> what started using it meanwhile
    deleted_objects: int = 0
    pool_deleted: int = 0  # unused pool objects collected
    pool_note: str = ""  # why the pool was left alone, if it was
    expired_channels: ExpiredChannels | None = None  # step 0: expired preview channels removed (or left)
    cdn: list[str] = field(default_factory=list)  # edge-key mode: the deleted versions' routes keys, per switcher

    @property
    def deleted_versions(self) -> list[str]:
        return list(self.deleted)

    def to_dict(self) -> dict:
        return {**self.plan.to_dict(), "dry_run": self.dry_run, "deleted_versions": self.deleted_versions,
                "deleted": self.deleted, "spared": self.spared, "deleted_objects": self.deleted_objects,
                "pool_deleted": self.pool_deleted, "pool_note": self.pool_note,
                "expired_channels": self.expired_channels.to_dict() if self.expired_channels else None,
                "cdn": self.cdn}


def _protected(store: Store, gone: frozenset[str] = frozenset()) -> dict[str, str]:
    out = {}
    # a corrupt pointer stops prune (IntegrityError): we could not tell what it protects
    for name, state in read_all_pointers(store).items():
        if name in gone:
            continue  # a dry run's expired channel: the real run removes it first
        p = state.pointer
        out.setdefault(p.version, f"channel {name!r}" + (" (pinned)" if p.pinned else ""))
        if p.previous:
            out.setdefault(p.previous, f"previous of channel {name!r}")
    return out


def _objects_by_version(store: Store) -> tuple[dict[str, list[str]], dict[str, datetime]]:
    keys: dict[str, list[str]] = defaultdict(list)
    newest: dict[str, datetime] = {}
    for info in store.list(VERSIONS):
        version = info.key[len(VERSIONS):].split("/", 1)[0]
        keys[version].append(info.key)
        if info.modified and (version not in newest or info.modified > newest[version]):
            newest[version] = info.modified
    return keys, newest


def plan_prune(store: Store, *, keep: int, older_than: float | None, grace: float,
               now: datetime | None = None, gone: frozenset[str] = frozenset(),
               manifests: ManifestMemo | None = None, workers: int = 8) -> tuple[PrunePlan, dict[str, list[str]]]:
    """Decide from each version's summary record (a few hundred bytes); whole manifests are read
    only for the versions kept, and only when the target has an objects pool to collect."""
    now = now or datetime.now(timezone.utc)
    manifests = manifests or ManifestMemo(store)
    protected = _protected(store, gone)
    claims = read_claims(store)
    for c in claims:
        if not c.expired:
            protected.setdefault(c.version, f"in use: {c.describe()}")
    committed = _committed(store, workers)
    created: dict[str, datetime] = {}
    for v, (summary, info) in committed.items():
        try:
            created[v] = parse_time(summary.created) if summary else (info.modified or now)
        except ValueError:
            created[v] = info.modified or now
    newest_first = sorted(committed, key=lambda v: created[v], reverse=True)
    keep_set, delete, reasons = [], [], {}
    for i, v in enumerate(newest_first):
        if v in protected:
            keep_set.append(v)
            reasons[v] = f"kept: {protected[v]}"
        elif i < keep:
            keep_set.append(v)
            reasons[v] = f"kept: among the {keep} newest"
        elif older_than is not None and now - created[v] < timedelta(seconds=older_than):
            keep_set.append(v)
            reasons[v] = "kept: newer than --older-than"
        else:
            delete.append(v)
            reasons[v] = "delete: older than the newest kept"
    objects, newest_object = _objects_by_version(store)
    orphans, young = [], []
    for v in sorted(set(objects) - set(committed)):
        if not VERSION_RE.match(v):
            continue  # not ours; never touch
        if v in protected:
            young.append(v)
            reasons[v] = f"kept: partial upload {protected[v]}"
            continue
        age = now - newest_object.get(v, now)
        if age >= timedelta(seconds=grace):
            orphans.append(v)
            reasons[v] = "delete: partial upload with no manifest, past the grace period"
        else:
            young.append(v)
            reasons[v] = "kept: partial upload inside the grace period (may be a publish in progress)"
    probes = [i.key for i in store.list(PROBES) if now - (i.modified or now) >= timedelta(seconds=grace)]
    stale = [c.key for c in claims if c.expired]
    pool = plan_pool(store, keep_set, manifests.get, now=now, grace=grace)
    # summaries of versions never committed (a publish died between its summary and its manifest)
    summaries = orphaned_summaries(store, set(committed) | set(orphans), set(protected), now, grace)
    n_objects = (sum(len(objects.get(v, [])) + 1 for v in delete) + sum(len(objects[v]) for v in orphans)
                 + len(probes) + len(stale) + len(summaries) + len(pool.unused))
    plan = PrunePlan(keep_set, delete, orphans, young, reasons, probes=probes, stale_claims=stale, objects=n_objects,
                     stale_summaries=summaries, pool=pool)
    return plan, objects


def _committed(store: Store, workers: int) -> dict[str, tuple[Summary | None, object]]:
    """Every committed version's summary (None where its manifest does not validate), with its
    manifest's listing info; a version whose manifest vanished since the listing is left out."""
    infos = list_manifest_infos(store)
    found = summaries(store, [v for v, _ in infos], workers=workers)
    out = {}
    for v, info in infos:
        if found.get(v) is None:
            try:
                store.head(manifest_key(v))
            except ObjectNotFound:
                continue
        out[v] = (found.get(v), info)
    return out


def prune(target: str | Store | None = None, *, keep: int | None = None, older_than: float | None = None,
          grace: float | None = None, force: bool = False, dry_run: bool = False,
          settings: Settings | None = None) -> PruneResult:
    """Delete old versions and stale partial uploads: ``prune("s3://b/site", keep=5)``."""
    with opened(target, settings, must_exist=True) as (store, settings):
        keep = settings.prune.keep if keep is None else keep
        if keep < 1:
            raise UsageError("--keep must be at least 1.")
        grace = settings.prune.grace_seconds if grace is None else grace
        # Step 0: expired preview channels go first (compare-and-delete), then versions as always. The
        # plan is first made as if they were gone, so a run over the safety limit removes nothing at all.
        expired = remove_expired_channels(store, dry_run=True)
        manifests = ManifestMemo(store)
        plan, objects = plan_prune(store, keep=keep, older_than=older_than, grace=grace,
                                   gone=frozenset(expired.removed), manifests=manifests,
                                   workers=settings.concurrency)
        over = len(plan.delete) + len(plan.orphans) > settings.prune.max_delete
        if expired.removed and not dry_run and (force or not over):
            expired = remove_expired_channels(store, on_removed=_edge_forgetter(settings))
            plan, objects = plan_prune(store, keep=keep, older_than=older_than, grace=grace,  # as it is now
                                       manifests=manifests, workers=settings.concurrency)
        result = PruneResult(plan, dry_run, expired_channels=expired)
        total = len(plan.delete) + len(plan.orphans)
        plan.over_limit = total > settings.prune.max_delete
        if dry_run:
            return result  # the whole plan, even over the limit: the dry run is how to look before --force
        if plan.over_limit and not force:
            raise UsageError(
                f"prune would delete {total} versions, more than the safety limit of {settings.prune.max_delete}; "
                "nothing was deleted.",
                hint="Check with --dry-run, then pass --force (or raise prune.max_delete).",
            )
        if not (total or plan.probes or plan.stale_claims or plan.stale_summaries or plan.pool.unused):
            return result
        lease = PruneLease(store, plan.delete + plan.orphans, pool=bool(plan.pool.unused))
        lease.acquire()
        try:
            _delete(store, plan, objects, lease, result, manifests)
        finally:
            lease.release()
        if result.deleted and settings.cloudfront:
            result.cdn = _forget_in_cdn(settings, result.deleted_versions)
        return result


def _edge_forgetter(settings: Settings):
    """After an expired channel's pointer goes: delete its CloudFront edge key too (edge-key mode)."""
    if not settings.cloudfront:
        return None
    from .cdn import remove_channel_from_cdn  # boto3 only when a CDN is configured

    def forget(channel: str, version: str) -> str:
        return "; ".join(f"{r.switcher}: {'ok' if r.ok else 'FAILED'} {r.detail}"
                         for r in remove_channel_from_cdn(settings.cloudfront, channel, version))

    return forget


def _forget_in_cdn(settings: Settings, versions: list[str]) -> list[str]:
    """Edge-key mode: the deleted versions' routes keys go from the KeyValueStore (after the versions
    themselves, so a failure here leaves keys nothing reads, which the next prune does not revisit:
    it is reported)."""
    from .cdn import forget_versions_in_cdn  # boto3 only when a CDN is configured

    return [f"{r.switcher}: {'ok' if r.ok else 'FAILED'} {r.detail}" for r in forget_versions_in_cdn(settings.cloudfront, versions)]


def _spared_meanwhile(store: Store, plan: PrunePlan) -> dict[str, str]:
    """Under the lease: every doomed version that a claim, a pointer or a new manifest now names.

    Claims are read before pointers: a command withdraws its claim only after its pointer write, so a
    command that is gone from the claims has already moved its pointer.
    """
    spared: dict[str, str] = {}
    for c in read_claims(store):
        if not c.expired:
            spared.setdefault(c.version, f"spared: {c.describe()} started using it")
    for v, why in _protected(store).items():
        spared.setdefault(v, f"spared: {why} points at it now")
    committed = {v for v, _ in list_manifest_infos(store)}
    for v in plan.orphans:
        if v in committed:
            spared.setdefault(v, "spared: a publish committed it meanwhile")
    doomed = set(plan.delete) | set(plan.orphans)
    return {v: why for v, why in spared.items() if v in doomed}


def _delete(store: Store, plan: PrunePlan, objects: dict[str, list[str]], lease: PruneLease,
            result: PruneResult, manifests: ManifestMemo) -> None:
    result.spared = _spared_meanwhile(store, plan)
    doomed = [v for v in plan.delete if v not in result.spared]
    orphans = [v for v in plan.orphans if v not in result.spared]
    # manifests first: from here on these versions can no longer be promoted
    lease.keep_alive()
    store.delete_many(manifest_key(v) for v in doomed)
    store.delete_many(summary_key(v) for v in doomed + orphans)  # listing records (atomicsite.summaries)
    for v in doomed + orphans:
        lease.keep_alive()
        keys = objects.get(v, [])
        store.delete_many(keys)
        result.deleted[v] = len(keys) + (v in doomed)
        result.deleted_objects += len(keys) + (v in doomed)
    if plan.pool.unused:
        lease.keep_alive()
        deleted = set(result.deleted)
        # every manifest as it is now, after the lease: read once each (planning read the kept ones)
        now = [manifests.get(v) for v, _ in list_manifest_infos(store) if v not in deleted]
        unused, result.pool_note = still_unused(plan.pool, read_claims(store), now)
        store.delete_many(unused)
        result.pool_deleted = len(unused)
        result.deleted_objects += len(unused)
    extra = plan.probes + plan.stale_claims + plan.stale_summaries
    if extra:
        store.delete_many(extra)
        result.deleted_objects += len(extra)


__all__ = ["prune", "plan_prune", "PruneResult", "PrunePlan"]
