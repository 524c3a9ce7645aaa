"""Retention and garbage collection.

``prune`` keeps the N newest committed versions and every version a channel points at (current or
previous, pinned or not); with ``older_than`` only versions older than that go. It deletes a
version's manifest before its objects, so a half-pruned version can never be pointed at, re-reads the
pointers after the manifests are gone (a promote that raced us gets its manifest back and prune
stops), removes leftover S3 conditional-write probes, and removes orphaned partial uploads (objects under ``v/`` with no manifest) once they are
older than a grace period. More than ``max_delete`` versions is refused unless ``force``: all or
nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from .channels import read_all_pointers
from .config import Settings
from .errors import ConflictError, IntegrityError, ObjectNotFound, UsageError
from .layout import PROBES, VERSIONS, VERSION_RE, manifest_key
from .manifest import Manifest, parse_time
from .stores.base import Store
from .targets import list_manifest_infos, opened


@dataclass
class PrunePlan:
    keep: list[str]
    delete: list[str]  # committed versions to delete
    orphans: list[str]  # uncommitted version prefixes to clean
    young_orphans: list[str]  # partial uploads still inside the grace period
    reasons: dict[str, str] = field(default_factory=dict)
    probes: list[str] = field(default_factory=list)  # leftover conditional-write probe objects (S3)
    objects: int = 0

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class PruneResult:
    plan: PrunePlan
    dry_run: bool
    deleted_versions: list[str] = field(default_factory=list)
    deleted_objects: int = 0

    def to_dict(self) -> dict:
        return {**self.plan.to_dict(), "dry_run": self.dry_run, "deleted_versions": self.deleted_versions,
                "deleted_objects": self.deleted_objects}


def _protected(store: Store) -> dict[str, str]:
    out = {}
    # a corrupt pointer stops prune (IntegrityError): we could not tell what it protects
    for name, state in read_all_pointers(store).items():
        p = state.pointer
        out.setdefault(p.version, f"channel {name!r}" + (" (pinned)" if p.pinned else ""))
        if p.previous:
            out.setdefault(p.previous, f"previous of channel {name!r}")
    return out


def _committed_now(store: Store, *, v: str) -> bool:
    try:
        store.head(manifest_key(v))
        return True
    except ObjectNotFound:
        return False


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
               now: datetime | None = None) -> tuple[PrunePlan, dict[str, list[str]], dict[str, bytes]]:
    now = now or datetime.now(timezone.utc)
    protected = _protected(store)
    committed = list_manifest_infos(store)  # newest first
    manifests: dict[str, bytes] = {}
    created: dict[str, datetime] = {}
    for v, info in committed:
        body = store.get(manifest_key(v)).data
        manifests[v] = body
        try:
            created[v] = parse_time(Manifest.from_json(body, where=v).created)
        except (IntegrityError, ValueError):
            created[v] = info.modified or now
    newest_first = sorted(manifests, key=lambda v: created[v], reverse=True)
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
    for v in sorted(set(objects) - set(manifests)):
        if not VERSION_RE.match(v):
            continue  # not ours; never touch
        age = now - newest_object.get(v, now)
        if age >= timedelta(seconds=grace):
            orphans.append(v)
            reasons[v] = "delete: partial upload with no manifest, past the grace period"
        else:
            young.append(v)
            reasons[v] = "kept: partial upload inside the grace period (may be a publish in progress)"
    probes = [i.key for i in store.list(PROBES) if now - (i.modified or now) >= timedelta(seconds=grace)]
    n_objects = (sum(len(objects.get(v, [])) + 1 for v in delete) + sum(len(objects[v]) for v in orphans)
                 + len(probes))
    plan = PrunePlan(keep_set, delete, orphans, young, reasons, probes=probes, objects=n_objects)
    return plan, objects, {v: manifests[v] for v in delete}


def prune(target: str | Store | None = None, *, keep: int | None = None, older_than: float | None = None,
          grace: float | None = None, force: bool = False, dry_run: bool = False,
          settings: Settings | None = None) -> PruneResult:
    """Delete old versions and stale partial uploads: ``prune("s3://b/site", keep=5)``."""
    with opened(target, settings, must_exist=True) as (store, settings):
        keep = settings.prune.keep if keep is None else keep
        if keep < 1:
            raise UsageError("--keep must be at least 1.")
        grace = settings.prune.grace_seconds if grace is None else grace
        plan, objects, doomed_manifests = plan_prune(store, keep=keep, older_than=older_than, grace=grace)
        result = PruneResult(plan, dry_run)
        total = len(plan.delete) + len(plan.orphans)
        if total > settings.prune.max_delete and not force:
            raise UsageError(
                f"prune would delete {total} versions, more than the safety limit of {settings.prune.max_delete}; "
                "nothing was deleted.",
                hint="Check with --dry-run, then pass --force (or raise prune.max_delete).",
            )
        if dry_run or not (total or plan.probes):
            return result
        # 1. manifests first: from here on these versions can no longer be promoted
        store.delete_many(manifest_key(v) for v in plan.delete)
        # 2. a promote may have raced us between planning and step 1: if a channel now names a doomed
        #    version, put its manifest back (its objects are untouched) and stop
        now_protected = _protected(store)
        raced = [v for v in plan.delete if v in now_protected]
        if raced:
            for v in raced:
                store.put(manifest_key(v), doomed_manifests[v], content_type="application/json")
            raise ConflictError(
                f"version {raced[0]} was promoted while prune ran; its manifest was restored and prune stopped.",
                hint="Re-run 'atomicsite prune'.",
            )
        # 3. objects, then the stale partial uploads, unless a publish committed one meanwhile
        for v in plan.delete + [o for o in plan.orphans if not _committed_now(store, v=o)]:
            keys = objects.get(v, [])
            store.delete_many(keys)
            result.deleted_objects += len(keys)
            result.deleted_versions.append(v)
        if plan.probes:
            store.delete_many(plan.probes)
            result.deleted_objects += len(plan.probes)
        return result


__all__ = ["prune", "plan_prune", "PruneResult", "PrunePlan"]
