"""Moving channels: promote, pin, unpin, rollback; channel list and delete.

Every move is one compare-and-swap of the channel pointer, then the "after" step: the configured
switchers (CloudFront) and, when asked, a health check of URLs that switches back on failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

from . import commit_order
from .cdn.switching import SwitchContext, SwitchReport
from .channels import (
    ChannelPointer,
    PointerState,
    next_pointer,
    read_all_pointers,
    read_pointer,
    with_pin,
    write_pointer,
)
from .claims import VersionClaim
from .commit_order import OrderVerdict
from .config import Settings
from .errors import (
    AtomicsiteError,
    ChannelNotFound,
    ConflictError,
    HealthCheckFailed,
    IntegrityError,
    ObjectNotFound,
    PreconditionFailed,
    StoreError,
    UnsupportedCondition,
    UsageError,
)
from .layout import DEFAULT_CHANNEL, TREE, channel_key, check_channel
from .manifest import Manifest, canonical_json, utcnow
from .stores.base import Store
from .summaries import read_summary
from .targets import find_manifest, opened, read_manifest, resolve_version

SWITCHERS_RECORD = "_atomicsite/switchers/{channel}.json"


@dataclass
class SwitchOutcome:
    channel: str
    pointer: ChannelPointer
    before: str | None
    switched: bool
    note: str = ""
    reports: list[SwitchReport] = field(default_factory=list)
    order: OrderVerdict | None = None  # the older-commit guard's verdict (publish and promote only)

    @property
    def version(self) -> str:
        return self.pointer.version

    def to_dict(self) -> dict:
        return {
            "channel": self.channel,
            "version": self.pointer.version,
            "before": self.before,
            "switched": self.switched,
            "pinned": self.pointer.pinned,
            "note": self.note,
            "after": [asdict(r) for r in self.reports],
            "older_guard": self.order.to_dict() if self.order else None,
        }


def _root_prefix(store: Store) -> str:
    inner = getattr(store, "inner", store)
    return (getattr(inner, "prefix", "") or "").strip("/")


def run_switchers(store: Store, settings: Settings, channel: str, manifest: Manifest,
                  previous: str | None, known: Callable[[str], Manifest | None] | None = None) -> list[SwitchReport]:
    """Apply every configured switcher for the version now in the pointer; record what each did.
    ``known``: manifests this command has already read (the previous version's is not read again)."""
    if not settings.cloudfront:
        return []
    from .cdn import switchers_from_settings  # boto3 only when a CDN is configured

    ctx = SwitchContext(
        target_url=store.url, root_prefix=_root_prefix(store), channel=channel, version=manifest.version,
        previous=previous, manifest=manifest,
        previous_manifest=(known(previous) if known and previous else None) or _quiet_manifest(store, previous),
    )
    reports = []
    for switcher in switchers_from_settings(settings.cloudfront):
        try:
            reports.append(switcher.apply(ctx))
        except AtomicsiteError as exc:
            reports.append(SwitchReport(switcher.name, False, str(exc)))
    record = {"channel": channel, "version": manifest.version, "at": utcnow(), "reports": [asdict(r) for r in reports]}
    store.put(SWITCHERS_RECORD.format(channel=channel), canonical_json(record), content_type="application/json")
    failed = [r for r in reports if not r.ok]
    if failed:
        raise StoreError(
            f"channel {channel!r} now points at {manifest.version}, but {failed[0].switcher} failed: {failed[0].detail}",
            hint=f"Fix it, then run 'atomicsite promote {manifest.version}' to apply the switchers again.",
        )
    return reports


def _quiet_manifest(store: Store, version: str | None) -> Manifest | None:
    if not version:
        return None
    try:
        return find_manifest(store, version)
    except IntegrityError:
        return None


def judge_order(store: Store, state: PointerState, manifest: Manifest,
                known: Callable[[str], Manifest | None] | None = None) -> OrderVerdict:
    """How ``manifest``'s commit relates to the commit the channel serves (atomicsite.commit_order).

    The live side needs only its ``source``: from a manifest the caller already read (``known``, which
    reads nothing itself), else the version's summary (a few hundred bytes, written from its
    manifest), else the manifest itself where there is no readable summary."""
    def live_source(version: str):
        if known is not None and (read := known(version)) is not None:
            return read
        summary = read_summary(store, version)
        return summary if summary is not None else find_manifest(store, version)

    live = commit_order.live_manifest(live_source, state.version)
    return commit_order.judge(state.version, live, manifest, commit_order.git_ancestry())


def switch_channel(store: Store, settings: Settings, state: PointerState, manifest: Manifest, *, action: str,
                   message: str | None = None, pinned: bool | None = None,
                   verify_urls: tuple[str, ...] | None = None, guard: bool = False,
                   allow_older: bool = False, expires: str | None = None,
                   known_manifest: Callable[[str], Manifest | None] | None = None) -> SwitchOutcome:
    """CAS the pointer to ``manifest.version``, run switchers, health-check and switch back on failure.

    The caller holds a claim on the version (:class:`atomicsite.claims.VersionClaim`), so no prune
    deletes it while the pointer moves. ``guard`` (publish, promote): refuse a build of an older commit
    than the channel serves (:class:`OlderBuildRefused`, nothing switched) unless ``allow_older``.
    """
    urls = settings.verify_urls_for(state.channel) if verify_urls is None else verify_urls
    if urls:
        from .healthcheck import check_urls, entry_for_url

        for url in urls:  # a mistake in the URL, not a CDN problem: say so before switching anything
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise UsageError(f"verify URL {url!r} is not an absolute http(s) URL; nothing was switched.",
                                 hint="Give the full URL, e.g. https://www.example.com/.")
            if entry_for_url(url, manifest) is None:
                raise UsageError(f"verify URL {url} maps to no file of version {manifest.version}; nothing was switched.",
                                 hint="Use URLs of pages the site has (https://host/, https://host/about/).")
    if settings.cloudfront and manifest.layout != TREE:
        raise UsageError(
            f"version {manifest.version} uses the {manifest.layout} layout, but CloudFront origin-path and "
            "edge-key switching serve a v/<version>/ tree; nothing was switched.",
            hint="Publish it with --layout tree (or layout = \"tree\"), or serve the objects layout with 'atomicsite serve'.",
        )
    order = None
    if guard:  # judged against the pointer as read: the write below swaps against that same token
        order = commit_order.enforce(judge_order(store, state, manifest, known_manifest), channel=state.channel,
                                     live_version=state.version, new_version=manifest.version, action=action,
                                     allow_older=allow_older)
    new = next_pointer(state, manifest.version, action=action, message=message, pinned=pinned, expires=expires)
    after = write_pointer(store, state, new)
    if after.pointer != new:  # another command switched the channel to this very version first
        return SwitchOutcome(state.channel, after.pointer, state.version, False, order=order,
                             note=f"already serves {manifest.version}: {after.pointer.by} switched it at the same time")
    reports = run_switchers(store, settings, state.channel, manifest, state.version, known_manifest)
    if urls:
        failure = check_urls(urls, manifest, timeout=settings.verify_timeout)
        if failure:
            _switch_back(store, settings, after, state, failure)
    note = f"older build allowed by --allow-older ({order.rule}: {order.detail})" if order and order.allowed_by_flag else ""
    return SwitchOutcome(state.channel, new, state.version, True, note=note, reports=reports, order=order)


def _switch_back(store: Store, settings: Settings, after: PointerState, before: PointerState, failure: str):
    if not before.version:
        raise HealthCheckFailed(
            f"health check failed: {failure}; there is no earlier version of {before.channel!r} to switch back to.",
            hint="Fix the site and publish again.",
        )
    back = next_pointer(after, before.version, action="switch-back", message=f"health check failed: {failure}",
                        pinned=before.pointer.pinned if before.pointer else False)
    try:
        write_pointer(store, after, back)
    except ConflictError:
        raise HealthCheckFailed(
            f"health check failed: {failure}; {after.version} went live, and switching {before.channel!r} back "
            "failed because someone else moved it meanwhile.",
            hint="Check 'atomicsite status' now.",
        ) from None
    old = read_manifest(store, before.version)
    run_switchers(store, settings, before.channel, old, after.version)
    raise HealthCheckFailed(
        f"health check failed: {failure}; switched {before.channel!r} back to {before.version}.",
        hint="Check the URLs and your CDN, then 'atomicsite promote' the version again when it is fixed.",
    )


def reconcile_live_link(store: Store, channel: str) -> None:
    """Local store: a crash between the pointer write and the ``current`` swap left them apart; a
    command that finds the channel already serving its version puts ``current`` right."""
    sync = getattr(getattr(store, "inner", store), "sync_current", None)
    if channel == DEFAULT_CHANNEL and sync is not None:
        sync()


def _state(store: Store, channel: str, repair: bool) -> PointerState:
    try:
        return read_pointer(store, channel)
    except IntegrityError:
        if not repair:
            raise
        # The pointer is corrupt: overwrite it, still by compare-and-swap against what is there.
        info = store.head(channel_key(channel))
        return PointerState(channel, None, info.token)


def _committed(store: Store, version: str) -> Manifest:
    try:
        return read_manifest(store, version)
    except ObjectNotFound:
        raise IntegrityError(
            f"version {version} is incomplete (no manifest), so no channel may point at it.",
            hint="Re-run 'atomicsite publish' with its build dir to finish it.",
        ) from None


def _move(version: str, target, *, channel, settings, action: str, message, pinned, repair=False,
          refuse_pinned: bool = True, verify_urls=None, guard: bool = False, allow_older: bool = False) -> SwitchOutcome:
    with opened(target, settings) as (store, settings):
        channel = check_channel(channel or settings.channel)
        state = _state(store, channel, repair)
        resolved = resolve_version(store, version, state)
        # Claimed before its manifest is read, until the pointer names it: a concurrent prune spares it
        # or we stay away from it (atomicsite.claims).
        with VersionClaim(store, resolved, action, wait=settings.prune.wait_seconds) as claim:
            manifest = _committed(store, resolved)
            return _move_to(store, settings, state, manifest, claim, action=action, message=message, pinned=pinned,
                            refuse_pinned=refuse_pinned, verify_urls=verify_urls, guard=guard,
                            allow_older=allow_older)


def _move_to(store: Store, settings: Settings, state: PointerState, manifest: Manifest, claim: VersionClaim, *,
             action: str, message, pinned, refuse_pinned: bool, verify_urls, guard: bool = False,
             allow_older: bool = False) -> SwitchOutcome:
    channel, resolved = state.channel, manifest.version
    p = state.pointer
    if refuse_pinned and p and p.pinned and p.version != resolved:
        raise ConflictError(
            f"channel {channel!r} is pinned to {p.version}; {action} would move it.",
            hint=f"Run 'atomicsite unpin' first, or 'atomicsite pin {resolved}' to move the pin.",
        )
    if p and p.version == resolved:
        reconcile_live_link(store, channel)
        if pinned is not None and p.pinned != pinned:
            new = with_pin(p, pinned, message=message)
            claim.ensure_held()
            write_pointer(store, state, new)
            return SwitchOutcome(channel, new, p.version, False, note=f"pinned to {resolved}")
        if action == "promote":  # re-applying switchers is how a failed CDN step is retried
            reports = run_switchers(store, settings, channel, manifest, p.previous)
            return SwitchOutcome(channel, p, p.version, False, note=f"already serves {resolved}", reports=reports)
        return SwitchOutcome(channel, p, p.version, False, note=f"already serves {resolved}")
    claim.ensure_held()
    return switch_channel(store, settings, state, manifest, action=action, message=message, pinned=pinned,
                          verify_urls=verify_urls, guard=guard, allow_older=allow_older)


def promote(version: str, target: str | Store | None = None, *, channel: str | None = None,
            message: str | None = None, settings: Settings | None = None, repair: bool = False,
            verify_urls: tuple[str, ...] | None = None, allow_older: bool = False) -> SwitchOutcome:
    """Point the channel at a committed version: ``promote("3f9a", "s3://b/site")``.

    ``repair=True`` replaces a corrupt pointer (still by compare-and-swap). A version built from an
    older commit than the channel serves is refused (:class:`OlderBuildRefused`, exit 3) unless
    ``allow_older=True``; ``rollback(to=...)`` is the explicit way back and is never refused.
    """
    return _move(version, target, channel=channel, settings=settings, action="promote", message=message,
                 pinned=None, repair=repair, verify_urls=verify_urls, guard=True, allow_older=allow_older)


def pin(version: str, target: str | Store | None = None, *, channel: str | None = None, message: str | None = None,
        settings: Settings | None = None) -> SwitchOutcome:
    """Switch to ``version`` and lock the channel there: later publishes commit but do not go live."""
    return _move(version, target, channel=channel, settings=settings, action="pin", message=message, pinned=True,
                 refuse_pinned=False)


def unpin(target: str | Store | None = None, *, channel: str | None = None, message: str | None = None,
          settings: Settings | None = None) -> SwitchOutcome:
    """Unlock a pinned channel; it keeps serving the same version until the next publish or promote."""
    with opened(target, settings) as (store, settings):
        channel = check_channel(channel or settings.channel)
        state = read_pointer(store, channel)
        if not state.pointer:
            raise ChannelNotFound(f"channel {channel!r} does not exist in {store.url}.", hint="See 'atomicsite channel list'.")
        if not state.pointer.pinned:
            return SwitchOutcome(channel, state.pointer, state.version, False, note="was not pinned")
        new = with_pin(state.pointer, False, message=message)
        write_pointer(store, state, new)
        return SwitchOutcome(channel, new, state.version, False, note=f"unpinned; still serves {new.version}")


def rollback(target: str | Store | None = None, *, to: str | None = None, channel: str | None = None,
             message: str | None = None, settings: Settings | None = None,
             verify_urls: tuple[str, ...] | None = None) -> SwitchOutcome:
    """Switch back to the previous live version (or ``to``): ``rollback("s3://b/site")``."""
    return _move(to or "previous", target, channel=channel, settings=settings, action="rollback",
                 message=message, pinned=None, verify_urls=verify_urls)


@dataclass(frozen=True)
class CorruptChannel:
    """A channel whose pointer does not validate, as ``list_channels`` reports it (and goes on)."""

    channel: str
    corrupt: str
    hint: str = "Point it at a good version with 'atomicsite promote VERSION --channel NAME --repair'."


def list_channels(target: str | Store | None = None, *,
                  settings: Settings | None = None) -> list[ChannelPointer | CorruptChannel]:
    """Every channel's pointer: ``[p.channel for p in list_channels("s3://b/site")]``; a channel whose
    pointer is corrupt is listed as a :class:`CorruptChannel` instead of stopping the listing."""
    with opened(target, settings, must_exist=True) as (store, _):
        corrupt: dict[str, str] = {}
        good = {name: state.pointer for name, state in read_all_pointers(store, corrupt=corrupt).items()}
        found: dict[str, ChannelPointer | CorruptChannel] = {**good, **{n: CorruptChannel(n, why) for n, why in corrupt.items()}}
        return [found[name] for name in sorted(found)]


@dataclass
class ChannelDeleted:
    """What ``channel delete`` did: the pointer it removed, and whether the delete was conditional."""

    channel: str
    pointer: ChannelPointer
    conditional: bool
    note: str = ""

    @property
    def version(self) -> str:
        return self.pointer.version

    def to_dict(self) -> dict:
        return {"deleted": self.channel, "version": self.version, "conditional": self.conditional, "note": self.note}


def delete_channel(name: str, target: str | Store | None = None, *, settings: Settings | None = None) -> ChannelDeleted:
    """Remove a preview channel's pointer (its versions stay until prune). Refuses ``live``.

    The delete is conditional on the pointer as read (S3 ``If-Match``, GCS generation, the local
    store's lock), so a channel someone switched meanwhile is not deleted from under them; where the
    store cannot check, it deletes anyway and says so: ``delete_channel("pr-12", "s3://b/site").note``.
    """
    check_channel(name)
    if name == DEFAULT_CHANNEL:
        raise UsageError("refusing to delete the 'live' channel.", hint="Use 'atomicsite pin' or 'rollback' to change what it serves.")
    with opened(target, settings) as (store, settings):
        state = read_pointer(store, name)
        if not state.pointer:
            raise ChannelNotFound(f"channel {name!r} does not exist in {store.url}.", hint="See 'atomicsite channel list'.")
        conditional, note = True, ""
        try:
            store.delete(channel_key(name), if_match=state.token)
        except UnsupportedCondition as exc:
            store.delete(channel_key(name))
            conditional = False
            note = (f"{exc.message.removesuffix(' nothing was deleted.').rstrip('; ')}: deleted without checking that "
                    "nobody switched the channel since it was read")
        except PreconditionFailed:
            now = read_pointer(store, name)
            if now.pointer is not None:
                raise ConflictError(
                    f"channel {name!r} was switched to {now.version} by someone else after it was read; "
                    "it was not deleted.",
                    hint=f"Check 'atomicsite status --channel {name}', then delete it again if you still mean to.",
                ) from None
            note = "it was already gone (deleted by a retry of this command or by someone else)"
        store.delete_many([SWITCHERS_RECORD.format(channel=name)])
        _forget_at_the_edge(settings, name, state.pointer.version)
        return ChannelDeleted(name, state.pointer, conditional, note)


def _forget_at_the_edge(settings: Settings, channel: str, version: str) -> None:
    """Edge-key CloudFront: delete the removed channel's key, so its preview host stops serving it."""
    if not settings.cloudfront:
        return
    from .cdn import remove_channel_from_cdn  # boto3 only when a CDN is configured

    failed = [r for r in remove_channel_from_cdn(settings.cloudfront, channel, version) if not r.ok]
    if failed:
        raise StoreError(f"channel {channel!r} was deleted, but {failed[0].detail}",
                         hint=f"Delete the key by hand (aws cloudfront-keyvaluestore delete-key) or run "
                              f"'atomicsite channel delete {channel}' again after publishing it once more.")


def switcher_record(store: Store, channel: str) -> dict | None:
    try:
        return json.loads(store.get(SWITCHERS_RECORD.format(channel=channel)).data)
    except (ObjectNotFound, ValueError):
        return None
