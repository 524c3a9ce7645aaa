"""Publish: scan → plan → transfer → verify → commit → switch → after.

A crash at any step leaves the live channel as it was; a re-run resumes (see docs/design.md). The
channel pointer is written last, by compare-and-swap against the token read when planning, so a
publisher that lost a race fails with a conflict instead of rolling the site back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .channels import read_pointer
from .config import Settings
from .errors import IntegrityError, PreconditionFailed
from .layout import check_channel, manifest_key, version_prefix
from .links import LinkReport, gate
from .manifest import Manifest
from .plan import ALREADY_LIVE, COPY, SKIP, SWITCH, UPLOAD, FileAction, Plan, make_plan
from .scan import scan
from .stores.base import IfMatch, ObjectInfo, Store, WriteMode
from .switch import SwitchOutcome, reconcile_live_link, switch_channel
from .targets import detect_source, find_manifest, list_manifest_infos, opened
from .transfer import run_one, run_transfers


@dataclass
class PublishResult:
    plan: Plan
    target: str
    dry_run: bool = False
    outcome: SwitchOutcome | None = None
    seconds: float = 0.0
    retries: int = 0
    links: LinkReport | None = None  # the broken-reference gate's findings (warnings; errors in a dry run)
    ignored: tuple[str, ...] = ()  # build-dir paths left out by the ignore globs (dirs end in '/')

    @property
    def version(self) -> str:
        return self.plan.version

    @property
    def switched(self) -> bool:
        return bool(self.outcome and self.outcome.switched)

    def to_dict(self) -> dict:
        d = {
            "target": self.target,
            "dry_run": self.dry_run,
            **self.plan.summary(),
            "switched": self.switched,
            "live": self.outcome.pointer.version if self.outcome else self.plan.pointer.version,
            "seconds": round(self.seconds, 3),
            "retries": self.retries,
        }
        if self.outcome:
            d["after"] = [r.__dict__ for r in self.outcome.reports]
        if self.dry_run:
            d["actions"] = [a.to_dict() for a in self.plan.actions]
            d["ignored"] = list(self.ignored)
        if self.links is not None:
            d["links"] = self.links.to_dict()
        return d


@dataclass
class PublishEvents:
    """Hooks for progress display: ``on_stage(name)``, ``on_scan(bytes)``, ``on_plan(plan)``, ``on_file(action)``."""

    on_stage: Callable[[str], None] = field(default=lambda stage: None)
    on_scan: Callable[[int], None] | None = None
    on_plan: Callable[[Plan], None] = field(default=lambda plan: None)
    on_file: Callable[[FileAction], None] | None = None


def _prove_stored(store: Store, manifest: Manifest, stored: dict[str, ObjectInfo]) -> dict[str, bool]:
    """Whether each already-stored object holds the manifest's bytes; HEAD only where a listing can't tell."""
    proven = {}
    for path, info in stored.items():
        entry = manifest.by_path.get(path)
        if entry is None:
            continue
        verdict = info.proves(size=entry.size, sha256=entry.sha256, md5=entry.md5)
        if verdict is None:
            verdict = bool(store.head(info.key).proves(size=entry.size, sha256=entry.sha256, md5=entry.md5))
        proven[path] = verdict
    return proven


def _known_manifests(store: Store, plan_pointer, version: str, limit: int) -> list[Manifest]:
    """Complete older versions to copy unchanged files from: the channel's current and previous, and the newest."""
    if limit <= 0:
        return []
    wanted: list[str] = []
    p = plan_pointer.pointer
    for v in ([p.version, p.previous] if p else []):
        if v and v != version and v not in wanted:
            wanted.append(v)
    for v, _ in list_manifest_infos(store):
        if len(wanted) >= limit + 2:
            break
        if v != version and v not in wanted:
            wanted.append(v)
    known = []
    for v in wanted:
        try:
            m = find_manifest(store, v)
        except IntegrityError:
            continue  # a corrupt old manifest only means we cannot copy from it
        if m:
            known.append(m)
    return known


def _unproven(store: Store, actions, proven: dict[str, bool], receipts: dict[str, ObjectInfo]) -> list[FileAction]:
    """The actions whose object is not proven to hold the file's bytes (by resume listing or receipt)."""
    bad = []
    for action in actions:
        e = action.entry
        if action.kind == SKIP:
            if not proven.get(e.path):
                bad.append(action)
            continue
        info = receipts.get(e.path)
        verdict = info.proves(size=e.size, sha256=e.sha256, md5=e.md5) if info else False
        if verdict is None:
            verdict = store.head(action.key).proves(size=e.size, sha256=e.sha256, md5=e.md5)
        if not verdict:
            bad.append(action)
    return bad


def _verify(store: Store, plan: Plan, proven: dict[str, bool], receipts: dict[str, ObjectInfo],
            sources: dict[str, Path]) -> None:
    """Every file must be proven present with its bytes. A copy from an older version that did not
    match (that object was damaged) is uploaded from the build dir instead, once."""
    bad = _unproven(store, plan.actions, proven, receipts)
    redo = [replace(a, kind=UPLOAD, reason="copy source did not match; uploaded") for a in bad if a.kind == COPY]
    if redo:
        for action in redo:
            receipts[action.entry.path] = run_one(store, action, sources[action.entry.path])
        bad = [a for a in bad if a.kind != COPY] + _unproven(store, redo, proven, receipts)
    bad = [a.entry.path for a in bad]
    if bad:
        raise IntegrityError(
            f"{len(bad)} stored object(s) of version {plan.version} do not match the build "
            f"(first: {bad[0]}); nothing was switched.",
            hint="Did the build dir change during publish? Re-run 'atomicsite publish' to redo them.",
        )


def _commit(store: Store, manifest: Manifest, corrupt_token: str | None) -> None:
    """Write the manifest create-only (or over a corrupt one, by compare-and-swap)."""
    key = manifest_key(manifest.version)
    mode = IfMatch(corrupt_token) if corrupt_token else WriteMode.CREATE
    try:
        store.put(key, manifest.to_json(), content_type="application/json", cache_control="no-store", mode=mode)
    except PreconditionFailed:
        pass  # another publisher committed the same version first: same id means same files


def _committed_manifest(store: Store, version: str) -> tuple[Manifest | None, str | None]:
    """The stored manifest of ``version`` if committed; else None, with the token of a corrupt one to replace."""
    try:
        return find_manifest(store, version), None
    except IntegrityError:
        # Publishing the same build again is how a corrupt manifest gets rewritten: every object is
        # re-proven below, then the manifest is replaced by compare-and-swap.
        return None, store.head(manifest_key(version)).token


def publish(
    build_dir: str | Path,
    target: str | Store | None = None,
    *,
    channel: str | None = None,
    promote: bool = True,
    message: str | None = None,
    dry_run: bool = False,
    settings: Settings | None = None,
    source: dict | None = None,
    events: PublishEvents | None = None,
) -> PublishResult:
    """Publish ``build_dir`` as a new immutable version, and switch the channel to it.

    >>> result = publish("dist", "s3://my-bucket/site")          # doctest: +SKIP
    >>> result.version, result.switched
    ('3f9a1c2b7d4e5f60', True)
    """
    started = time.monotonic()
    events = events or PublishEvents()
    with opened(target, settings) as (store, settings):
        channel = check_channel(channel or settings.channel)
        events.on_stage("scan")
        ignored: list[str] = []
        files = scan(build_dir, rules=settings.rules, ignore=settings.ignore, on_file=events.on_scan,
                     on_ignored=ignored.append)
        sources = {f.entry.path: f.source for f in files}
        events.on_stage("links")  # before the store is touched: a refused build uploads nothing
        links = gate(files, settings.links, dry_run=dry_run)
        manifest = Manifest.build((f.entry for f in files), source=source if source is not None else detect_source(),
                                  message=message)

        events.on_stage("plan")
        pointer = read_pointer(store, channel)
        committed, corrupt_token = _committed_manifest(store, manifest.version)
        stored: dict[str, ObjectInfo] = {}
        proven: dict[str, bool] = {}
        known: list[Manifest] = []
        if committed is None:
            prefix = version_prefix(manifest.version)
            stored = {info.key[len(prefix):]: info for info in store.list(prefix)}
            proven = _prove_stored(store, manifest, stored)
            known = _known_manifests(store, pointer, manifest.version, settings.reuse_from)
        else:
            manifest = committed  # keep the first publish's record of time, message and source
        plan = make_plan(manifest, pointer, committed=committed is not None, stored=stored, proven=proven,
                         known=known, promote=promote)
        events.on_plan(plan)
        result = PublishResult(plan, store.url, dry_run=dry_run, links=links, ignored=tuple(ignored))
        if dry_run:
            result.seconds = time.monotonic() - started
            return result

        if not plan.committed:
            events.on_stage("transfer")
            receipts = run_transfers(store, plan, sources, workers=settings.concurrency, on_done=events.on_file)
            events.on_stage("verify")
            _verify(store, plan, proven, receipts, sources)
            events.on_stage("commit")
            _commit(store, manifest, corrupt_token)

        if plan.switch == ALREADY_LIVE:
            reconcile_live_link(store, channel)
        if plan.switch == SWITCH:
            events.on_stage("switch")
            result.outcome = switch_channel(store, settings, pointer, manifest, action="publish", message=message,
                                            just_committed=not plan.committed)
        result.seconds = time.monotonic() - started
        result.retries = getattr(store, "retries", 0)
        return result


__all__ = ["publish", "PublishResult", "PublishEvents"]
