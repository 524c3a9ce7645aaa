"""Publish: scan → plan → transfer → verify → commit → switch → after.

A crash at any step leaves the live channel as it was; a re-run resumes (see docs/design.md). The
channel pointer is written last, by compare-and-swap against the token read when planning, so a
publisher that lost a race fails with a conflict instead of rolling the site back.
"""

from __future__ import annotations

import functools
import gc
import math
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .channels import PointerState, expiry_after, read_pointer, with_expiry, write_pointer
from .claims import VersionClaim
from .config import Settings
from .errors import IntegrityError, ObjectNotFound, PreconditionFailed, UsageError
from .layout import DEFAULT_CHANNEL, OBJECTS, POOL, TREE, check_channel, has_link_trees, manifest_key, pool_key, sha_of_pool_key, version_prefix
from .link_cache import LinkCache
from .links import LinkReport, gate
from .manifest import Manifest
from .plan import COPY, SKIP, SWITCH, UPLOAD, FileAction, Plan, make_objects_plan, make_plan
from .routing.build import scan_site
from .scan import Sources
from .routing.s3_website import write_website_redirects
from .stores.base import IfMatch, ObjectInfo, Store, WriteMode, proves_by_md5, trait
from .commit_order import OrderVerdict
from .compress import VariantFiles, add_variants, known_variants
from .summaries import read_summary, resync_summary, write_summary
from .switch import SwitchOutcome, judge_order, reconcile_live_link, switch_channel
from .targets import ManifestMemo, detect_source, find_manifest, list_manifest_infos, opened
from .bulk_links import transfer
from .transfer import run_one


@dataclass
class PublishResult:
    plan: Plan
    target: str
    dry_run: bool = False
    outcome: SwitchOutcome | None = None
    seconds: float = 0.0
    retries: int = 0
    website: dict | None = None  # website_redirects: the objects written and the rules S3 cannot express
    links: LinkReport | None = None  # the broken-reference gate's findings (warnings; errors in a dry run)
    ignored: tuple[str, ...] = ()  # build-dir paths left out by the ignore globs (dirs end in '/')
    order: OrderVerdict | None = None  # dry run: what the older-commit guard would say about the switch
    url: str | None = None  # the channel's preview URL, from the preview_url template
    expires: str | None = None  # when the channel expires (prune removes it after), if it does

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
            d["note"] = self.outcome.note
        order = self.outcome.order if self.outcome else self.order
        d["older_guard"] = order.to_dict() if order else None
        if self.website is not None:
            d["website_redirects"] = self.website
        d["url"], d["expires"] = self.url, self.expires
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
        entry = manifest.stored_by_path.get(path)
        if entry is None:
            continue
        verdict = info.proves(size=entry.size, sha256=entry.sha256, md5=entry.md5)
        if verdict is None:
            verdict = bool(store.head(info.key).proves(size=entry.size, sha256=entry.sha256, md5=entry.md5))
        proven[path] = verdict
    return proven


def _known_manifests(store: Store, read: Callable[[str], Manifest | None], plan_pointer, version: str,
                     limit: int, contents: dict[str, int] | None = None) -> list[Manifest]:
    """Complete older versions to copy unchanged files from: the channel's current version, then its
    previous and the newest few; with ``contents`` (sha256 -> size of what the build stores), each
    read only while the bytes still to upload outweigh it.

    A manifest is read whole and validated (a 50,000-file one is 3.8 MB and ~0.3 s of CPU): reading
    one to avoid uploading fewer bytes than it holds costs more than it saves. So after the current
    version, which holds most of a typical build, an older manifest is read only while the contents
    found in none of those read so far add up to more than its stored size (a revert of a large
    change still finds its files in the previous version)."""
    if limit <= 0:
        return []
    wanted: list[str] = []
    p = plan_pointer.pointer
    for v in ([p.version, p.previous] if p else []):
        if v and v != version and v not in wanted:
            wanted.append(v)
    infos = list_manifest_infos(store)
    sizes = {v: info.size for v, info in infos}
    for v, _ in infos:
        if len(wanted) >= limit + 2:
            break
        if v != version and v not in wanted:
            wanted.append(v)
    missing = dict(contents) if contents is not None else None
    known = []
    for v in wanted:
        if known and missing is not None and sum(missing.values()) <= sizes.get(v, 0):
            continue
        try:
            m = read(v)
        except IntegrityError:
            continue  # a corrupt old manifest only means we cannot copy from it
        if m:
            known.append(m)
            for f, _ in m.stored if missing is not None else ():
                missing.pop(f.sha256, None)
    return known


def _unproven(store: Store, actions, proven: dict[str, bool], receipts: dict[str, ObjectInfo]) -> list[FileAction]:
    """The actions whose object is not proven to hold the file's bytes (by resume listing or receipt)."""
    bad = []
    for action in actions:
        e = action.entry
        if action.kind == SKIP:
            # a second file with content uploaded in this run is proven by that upload's receipt
            if not (proven.get(e.path) or (action.source_key and proven.get(action.source_key))):
                bad.append(action)
            continue
        info = receipts.get(e.path)
        verdict = info.proves(size=e.size, sha256=e.sha256, md5=e.md5) if info else False
        if verdict is None:
            verdict = store.head(action.key).proves(size=e.size, sha256=e.sha256, md5=e.md5)
        if not verdict:
            bad.append(action)
    return bad


def _verify(store: Store, actions, version: str, proven: dict[str, bool], receipts: dict[str, ObjectInfo],
            sources: dict[str, Path]) -> None:
    """Every file must be proven present with its bytes. A copy from an older version that did not
    match (that object was damaged) is uploaded from the build dir instead, once."""
    for action in actions:  # what this run uploaded proves the files that share its content
        info = receipts.get(action.entry.path)
        if action.kind == UPLOAD and info and info.proves(size=action.entry.size, sha256=action.entry.sha256,
                                                          md5=action.entry.md5):
            proven[action.key] = True
    bad = _unproven(store, actions, proven, receipts)
    redo = [replace(a, kind=UPLOAD, reason="copy source did not match; uploaded") for a in bad if a.kind == COPY]
    if redo:
        for action in redo:
            receipts[action.entry.path] = run_one(store, action, sources[action.entry.path])
        bad = [a for a in bad if a.kind != COPY] + _unproven(store, redo, proven, receipts)
    bad = [a.entry.path for a in bad]
    if bad:
        raise IntegrityError(
            f"{len(bad)} stored object(s) of version {version} do not match the build "
            f"(first: {bad[0]}); nothing was switched.",
            hint="Did the build dir change during publish? Re-run 'atomicsite publish' to redo them.",
        )


def _commit(store: Store, manifest: Manifest, corrupt_token: str | None, data: bytes | None = None) -> None:
    """Write the version's summary, then the manifest create-only (or over a corrupt one, by
    compare-and-swap): the manifest is the commit point (atomicsite.summaries). ``data``: the
    manifest's bytes, if already packed (``manifest.to_json()``)."""
    key = manifest_key(manifest.version)
    mode = IfMatch(corrupt_token) if corrupt_token else WriteMode.CREATE
    write_summary(store, manifest)
    try:
        store.put(key, data if data is not None else manifest.to_json(), content_type="application/json",
                  cache_control="no-store", mode=mode)
    except PreconditionFailed:
        # Another publisher committed the same version first: same id means same files, but its
        # time and message win, so the summary (which we may just have overwritten) must say them.
        resync_summary(store, manifest.version)


def _committed_manifest(store: Store, version: str) -> tuple[Manifest | None, str | None]:
    """The stored manifest of ``version`` if committed; else None, with the token of a corrupt one to replace."""
    try:
        return find_manifest(store, version), None
    except IntegrityError:
        # Publishing the same build again is how a corrupt manifest gets rewritten: every object is
        # re-proven below, then the manifest is replaced by compare-and-swap.
        return None, store.head(manifest_key(version)).token


def _collector_paused(fn):
    """Run ``fn`` with Python's cyclic garbage collector paused (unless it already is), then resume it.

    A publish allocates several objects per file and keeps nearly all of them to the end, with no
    cycles among them: the collector's passes over them found nothing and cost 0.45 s of 4.1 s for a
    50,000-file site (bench/bench_publish.py, local section). Reference counting still frees what
    is dropped; only cycles wait for the collector, which runs again once the call returns.
    """

    @functools.wraps(fn)
    def paused(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused


@_collector_paused
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
    layout: str | None = None,
    allow_older: bool = False,
    expires: float | None = None,
    repair: bool = False,
) -> PublishResult:
    """Publish ``build_dir`` as a new immutable version, and switch the channel to it.

    A build of an older commit than the channel serves is committed but not switched
    (:class:`atomicsite.errors.OlderBuildRefused`, exit 3) unless ``allow_older=True``
    (atomicsite.commit_order); ``source`` is the provenance to record (default: detected from git / CI).
    ``expires`` (seconds) makes a preview channel expire that long from now; ``prune`` then removes it.
    ``repair`` proves every object again by listing, as for a version never published, even when it is
    already committed, and stores again what is missing or damaged (objects deleted behind the tool's back).

    >>> result = publish("dist", "s3://my-bucket/site")          # doctest: +SKIP
    >>> result.version, result.switched
    ('3f9a1c2b7d4e5f60', True)
    """
    started = time.monotonic()
    events = events or PublishEvents()
    with opened(target, settings) as (store, settings), VariantFiles() as variants:
        channel = check_channel(channel or settings.channel)
        expiry = _expiry(channel, expires)
        events.on_stage("scan")
        ignored: list[str] = []
        files, rules = scan_site(build_dir, settings, on_file=events.on_scan,  # rule errors stop it here
                                 on_ignored=ignored.append, md5=proves_by_md5(store))
        events.on_stage("links")  # before the store is touched: a refused build uploads nothing
        links = gate(files, settings.links, dry_run=dry_run, rules=rules,
                     cache=None if settings.links.off else LinkCache.for_build(build_dir))

        events.on_stage("plan")
        memo = ManifestMemo(store)  # the served version's manifest is read once, however many steps need it
        pointer = read_pointer(store, channel)
        if settings.compress:
            events.on_stage("compress")
            # brotli/gzip copies (atomicsite.compress); a file the target's recent versions already
            # have variants of is not compressed again: their records are reused, their objects copied
            known = known_variants(_known_manifests(store, memo.find, pointer, "", settings.reuse_from,
                                                    contents={f.entry.sha256: f.entry.size for f in files}))
            files = add_variants(files, settings.compress, variants, known=known)
        sources = Sources(files, extra=variants.sources)
        manifest = Manifest.build((f.entry for f in files), source=source if source is not None else detect_source(),
                                  message=message, rules=rules)
        manifest = replace(manifest, layout=layout or settings.layout or _default_layout(store, pointer, settings, memo.find))
        if dry_run or (pointer.version == manifest.version and not repair):
            # A dry run only reads; a build the channel already serves is protected by the pointer itself.
            planned = _plan(store, settings, pointer, manifest, promote, memo, repair)
            if dry_run or planned.plan.committed:
                events.on_plan(planned.plan)
                kept = pointer
                if not dry_run:
                    reconcile_live_link(store, channel)
                    if expiry and pointer.pointer:  # the same build again still extends the preview
                        kept = write_pointer(store, pointer, with_expiry(pointer.pointer, expiry))
                order = None
                if dry_run and planned.plan.switch == SWITCH:
                    order = judge_order(store, pointer, planned.plan.manifest, memo.cached)
                    if order.older and allow_older:
                        order = replace(order, allowed_by_flag=True)
                return _previewed(PublishResult(planned.plan, store.url, dry_run=dry_run,
                                                seconds=time.monotonic() - started, links=links,
                                                ignored=tuple(ignored), order=order), settings, channel, kept)
        # The claim keeps a concurrent prune away from this version from before we look at what is
        # stored until the pointer names it (atomicsite.claims).
        with VersionClaim(store, manifest.version, "publish", wait=settings.prune.wait_seconds,
                          uses_pool=manifest.layout == OBJECTS) as claim:
            planned = _plan(store, settings, pointer, manifest, promote, memo, repair)
            plan = planned.plan
            events.on_plan(plan)
            result = PublishResult(plan, store.url, links=links, ignored=tuple(ignored))
            if not plan.committed:
                events.on_stage("transfer")
                with ThreadPoolExecutor(max_workers=1) as packer:
                    # The manifest is packed while the files go up: zlib lets go of the GIL, and the
                    # local store's links are mostly system calls. At 50,000 files packing took 0.27 s
                    # after the links; alongside them it slows them by ~0.12 s.
                    packed = packer.submit(plan.manifest.to_json)
                    receipts = transfer(store, plan.actions, sources, workers=settings.concurrency,
                                        on_done=events.on_file)
                    link_receipts = transfer(store, plan.links, sources, workers=settings.concurrency)
                    events.on_stage("verify")
                    _verify(store, plan.actions, plan.version, planned.proven, receipts, sources)
                    _verify(store, plan.links, plan.version, {}, link_receipts, sources)
                    if settings.website_redirects and plan.manifest.rules.redirects:
                        result.website = write_website_redirects(store, plan.manifest).to_dict()  # before the commit
                    events.on_stage("commit")
                    claim.ensure_held()
                    _commit(store, plan.manifest, planned.corrupt_token, packed.result())
            if plan.switch == SWITCH:
                events.on_stage("switch")
                claim.ensure_held()
                result.outcome = switch_channel(store, settings, pointer, plan.manifest, action="publish",
                                                message=message, guard=True, allow_older=allow_older,
                                                expires=expiry, known_manifest=memo.cached)
        result.seconds = time.monotonic() - started
        result.retries = getattr(store, "retries", 0)
        return _previewed(result, settings, channel, pointer)


def _expiry(channel: str, expires: float | None) -> str | None:
    if expires is None:
        return None
    if channel == DEFAULT_CHANNEL:
        raise UsageError("--expires is for preview channels; 'live' never expires.",
                         hint="Publish to a preview channel (--channel pr-12 --expires 7d), or drop --expires.")
    if expires <= 0:
        raise UsageError("--expires must be a positive duration.", hint="e.g. --expires 7d")
    return expiry_after(expires)


def _previewed(result: PublishResult, settings: Settings, channel: str, before: PointerState) -> PublishResult:
    """Fill in the preview URL and the expiry the channel now has (atomicsite.previews)."""
    pointer = result.outcome.pointer if result.outcome else before.pointer
    result.expires = pointer.expires if pointer else None
    result.url = settings.preview_url.url_for(channel) if settings.preview_url else None
    return result


@dataclass(frozen=True)
class _Planned:
    plan: Plan
    proven: dict[str, bool]
    corrupt_token: str | None


def _default_layout(store: Store, pointer: PointerState, settings: Settings,
                    read: Callable[[str], Manifest | None]) -> str:
    """An existing channel keeps the layout of the version it serves; a new one gets the objects layout
    on the local store (whose ``current`` is a hard-linked tree either way) and the tree layout on a
    bucket, which any static host, CloudFront origin path or edge key can serve (docs/layout.md). With
    CloudFront switching configured it is always tree: that is what the CDN serves."""
    if settings.cloudfront:
        return TREE
    if pointer.version:
        summary = read_summary(store, pointer.version)  # a few hundred bytes, not the whole manifest
        if summary is not None:
            return summary.extra.get("layout", TREE)
        try:
            current = read(pointer.version)
        except IntegrityError:
            current = None
        if current is not None:
            return current.layout
    return OBJECTS if has_link_trees(store) else TREE


def _pool_proven(store: Store, manifest: Manifest, pointer: PointerState, read: Callable[[str], Manifest | None],
                 workers: int, *, repair: bool = False) -> dict[str, bool]:
    """The build's contents found in the objects pool, by sha256, and whether each object holds its bytes.

    Called under the publish's pool claim. Every content the channel's current objects-layout manifest
    references is present: that manifest was committed only after all its objects were verified, prune
    deletes a manifest before any object, and the pool is not collected while the claim stands (while
    a collection runs, the claim waits). So only the contents it lacks are looked up: one ``head``
    each, concurrently, when they are no more than twice the pages a listing would take (a few changed
    files), otherwise one listing of the pool in pages of 1,000 (a fresh target, a large change).
    Where a listing cannot prove an object's bytes (no MD5, as on the local store), its name and size
    do: a pool object is named by the sha256 of its bytes and written whole; 'atomicsite verify' re-hashes.
    With ``repair`` nothing is taken on trust: the pool is listed, an object the listing cannot prove
    is asked for its metadata, and one that cannot be proven either way is stored again.
    """
    want = {f.sha256: f for f, _ in manifest.stored}  # files and their compressed variants
    base = None if repair else _objects_base(read, pointer, manifest.version)
    proven = {f.sha256: True for f, _ in base.stored if f.sha256 in want} if base else {}
    unknown = [entry for sha, entry in want.items() if sha not in proven]
    if not unknown:
        return proven

    def judge(info: ObjectInfo, entry) -> bool:
        verdict = info.proves(size=entry.size, sha256=entry.sha256, md5=entry.md5)
        if verdict is None and repair and info.size == entry.size:
            # what the listing cannot tell, a head can (sha256 metadata; locally the inode's record)
            verdict = store.head(info.key).proves(size=entry.size, sha256=entry.sha256, md5=entry.md5)
        if verdict is None:
            return info.size == entry.size and not repair
        return verdict

    if base is not None and len(unknown) <= 2 * max(1, math.ceil(len(base.stored) / 1000)):
        def look(entry) -> tuple[str, bool] | None:
            try:
                return entry.sha256, judge(store.head(pool_key(entry.sha256)), entry)
            except ObjectNotFound:
                return None
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(unknown)))) as pool:
            proven.update(found for found in pool.map(look, unknown) if found)
        return proven
    for info in store.list(POOL):
        sha = sha_of_pool_key(info.key)
        entry = want.get(sha) if sha else None
        if entry is not None and sha not in proven:
            proven[sha] = judge(info, entry)
    return proven


def _objects_base(read: Callable[[str], Manifest | None], pointer: PointerState, version: str) -> Manifest | None:
    """The manifest of the version the channel serves, if it is another objects-layout version that reads cleanly."""
    if not pointer.version or pointer.version == version:
        return None
    try:
        base = read(pointer.version)
    except IntegrityError:
        return None
    return base if base is not None and base.layout == OBJECTS else None


def _plan(store: Store, settings: Settings, pointer: PointerState, manifest: Manifest, promote: bool,
          memo: ManifestMemo, repair: bool = False) -> _Planned:
    """Read what is stored of this version; decide per file (the plan step). With ``repair``, a
    committed version is planned as if it were not: its manifest stays (the commit finds it there)."""
    committed, corrupt_token = (None, None) if repair else _committed_manifest(store, manifest.version)
    if manifest.layout == OBJECTS and committed is None:
        tree = tree_proven = None
        if has_link_trees(store):
            prefix = version_prefix(manifest.version)
            tree = {info.key[len(prefix):]: info for info in store.list(prefix)}
            tree_proven = _prove_stored(store, manifest, tree)
        # read again now, under the claim: the proof needs the manifest as it is after the claim was written
        pool_proven = _pool_proven(store, manifest, pointer, memo.fresh, settings.concurrency, repair=repair)
        plan = make_objects_plan(manifest, pointer, committed=False, pool_proven=pool_proven,
                                 tree=tree, tree_proven=tree_proven, promote=promote)
        # a file whose content the pool holds (vouched for, looked up or listed) is proven; the rest by this run's receipts
        return _Planned(plan, {f.path: True for f, _ in manifest.stored if pool_proven.get(f.sha256)}, corrupt_token)
    stored: dict[str, ObjectInfo] = {}
    proven: dict[str, bool] = {}
    known: list[Manifest] = []
    if committed is None:
        prefix = version_prefix(manifest.version)
        stored = {info.key[len(prefix):]: info for info in store.list(prefix)}
        proven = _prove_stored(store, manifest, stored)
        known = _known_manifests(store, memo.find, pointer, manifest.version, settings.reuse_from,
                                 contents={f.sha256: f.size for f, _ in manifest.stored})
    else:
        manifest = committed  # keep the first publish's record of time, message and source
    plan = make_plan(manifest, pointer, committed=committed is not None, stored=stored, proven=proven,
                     known=known, promote=promote, link_trees=has_link_trees(store),
                     keeps_extra_headers=trait(store, "keeps_extra_headers", True))
    return _Planned(plan, proven, corrupt_token)


__all__ = ["publish", "PublishResult", "PublishEvents"]
