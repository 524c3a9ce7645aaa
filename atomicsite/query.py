"""Read-only commands: status, versions, history, diff, verify."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .channels import read_all_pointers, read_pointer
from .config import Settings
from .errors import ChannelNotFound, IntegrityError, ObjectNotFound, UsageError
from .layout import OBJECTS, POOL, check_channel, content_key, has_link_trees, sha_of_pool_key, version_prefix
from .stores.base import Store
from .summaries import summaries, summary_of
from .switch import switcher_record
from .targets import list_manifest_infos, opened, read_manifest, resolve_version


@dataclass
class Status:
    target: str
    channel: str
    pointer: dict | None
    manifest: dict | None  # summary of the version served: files, bytes, created, source, message
    current_link: str | None  # local store: where `current` points
    switchers: dict | None

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def status(target: str | Store | None = None, *, channel: str | None = None,
           settings: Settings | None = None) -> Status:
    """What the channel serves now: ``status("s3://b/site").pointer["version"]``."""
    with opened(target, settings, must_exist=True) as (store, settings):
        channel = check_channel(channel or settings.channel)
        state = read_pointer(store, channel)
        if state.pointer is None:
            raise ChannelNotFound(f"channel {channel!r} has nothing published in {store.url} yet.",
                                  hint="Run 'atomicsite publish DIR' first.")
        summary = summary_of(store, state.pointer.version)  # a few hundred bytes, not the manifest
        link = getattr(store, "live_link_target", lambda: None)() if channel == "live" else None
        pointer = state.pointer.to_dict()
        pointer.pop("history", None)
        return Status(store.url, channel, pointer, summary.to_dict(), link, switcher_record(store, channel))


@dataclass
class VersionRow:
    version: str
    created: str
    files: int
    bytes: int
    commit: str | None
    message: str | None
    channels: list[str] = field(default_factory=list)
    pinned_by: list[str] = field(default_factory=list)


class VersionList(list):
    """``versions()``'s rows, and the channels whose pointer could not be read (name → what is wrong)."""

    def __init__(self, rows=(), *, corrupt_channels: dict[str, str] | None = None):
        super().__init__(rows)
        self.corrupt_channels = corrupt_channels or {}


def versions(target: str | Store | None = None, *, settings: Settings | None = None) -> VersionList:
    """Every committed version, newest first, with the channels that point at it.

    Reads each version's summary record (atomicsite.summaries), not its manifest."""
    with opened(target, settings, must_exist=True) as (store, settings):
        corrupt: dict[str, str] = {}
        pointers = read_all_pointers(store, corrupt=corrupt)  # one bad preview pointer must not hide the rest
        rows = VersionList(corrupt_channels=corrupt)
        found = summaries(store, [v for v, _info in list_manifest_infos(store)], workers=settings.concurrency)
        for v, s in found.items():
            if s is None:
                rows.append(VersionRow(v, "?", 0, 0, None, "corrupt or vanished manifest"))
                continue
            on = sorted(c for c, p in pointers.items() if p.version == v)
            pins = sorted(c for c, p in pointers.items() if p.version == v and p.pointer.pinned)
            rows.append(VersionRow(v, s.created, s.files, s.bytes, s.source.get("commit"), s.message, on, pins))
        rows.sort(key=lambda r: (r.created, r.version), reverse=True)
        return rows


def history(target: str | Store | None = None, *, channel: str | None = None,
            settings: Settings | None = None) -> list[dict]:
    """The channel's recent switches, newest first (bounded: the pointer keeps the last 20)."""
    with opened(target, settings, must_exist=True) as (store, settings):
        channel = check_channel(channel or settings.channel)
        state = read_pointer(store, channel)
        if state.pointer is None:
            raise ChannelNotFound(f"channel {channel!r} has nothing published in {store.url} yet.")
        return [h.__dict__.copy() for h in state.pointer.history]


@dataclass
class Diff:
    a: str
    b: str
    added: list[str]
    removed: list[str]
    changed: list[str]

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def diff(a: str, b: str, target: str | Store | None = None, *, channel: str | None = None,
         settings: Settings | None = None) -> Diff:
    """Paths added, removed and changed (content or headers) from version ``a`` to ``b``."""
    with opened(target, settings, must_exist=True) as (store, settings):
        state = read_pointer(store, check_channel(channel or settings.channel))
        ma = read_manifest(store, resolve_version(store, a, state))
        mb = read_manifest(store, resolve_version(store, b, state))
        pa, pb = ma.by_path, mb.by_path
        return Diff(
            ma.version, mb.version,
            added=sorted(set(pb) - set(pa)),
            removed=sorted(set(pa) - set(pb)),
            changed=sorted(p for p in set(pa) & set(pb) if pa[p].identity() != pb[p].identity()),
        )


@dataclass
class VerifyResult:
    version: str
    files: int
    missing: list[str]
    mismatched: list[str]
    extra: list[str]
    variants: int = 0  # compressed variants re-hashed besides the files (their paths end .br/.gz)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched)

    def to_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def verify(version: str | None = None, target: str | Store | None = None, *, channel: str | None = None,
           settings: Settings | None = None, raise_on_failure: bool = True) -> VerifyResult:
    """Download every object of a version and re-hash it against the manifest (default: the one the
    channel serves)."""
    with opened(target, settings, must_exist=True) as (store, settings):
        state = read_pointer(store, check_channel(channel or settings.channel))
        v = resolve_version(store, version or "current", state)
        manifest = read_manifest(store, v)
        link_trees = has_link_trees(store)
        in_pool = manifest.layout == OBJECTS and not link_trees
        # every object of the version: its files, and their compressed variants (atomicsite.compress)
        objects = manifest.stored_by_path
        if in_pool:  # the version's contents live in the pool: what matters is that each one is there
            stored_shas = {sha_of_pool_key(info.key) for info in store.list(POOL)}
            stored = {path for path, f in objects.items() if f.sha256 in stored_shas}
        else:
            prefix = version_prefix(v)
            stored = {info.key[len(prefix):] for info in store.list(prefix)}

        def rehash(f) -> str | None:
            digest = hashlib.sha256()
            try:
                for chunk in store.open(content_key(v, manifest.layout, f.path, f.sha256, link_trees=link_trees)):
                    digest.update(chunk)
            except ObjectNotFound:
                return None
            return digest.hexdigest()

        present = [f for path, f in objects.items() if path in stored]
        with ThreadPoolExecutor(max_workers=settings.concurrency) as pool:
            hashes = dict(zip((f.path for f in present), pool.map(rehash, present)))
        result = VerifyResult(
            v, len(manifest.files),
            missing=sorted(path for path in objects if hashes.get(path) is None),
            mismatched=sorted(f.path for f in present if hashes.get(f.path) not in (None, f.sha256)),
            extra=[] if in_pool else sorted(stored - set(objects)),
            variants=len(objects) - len(manifest.files),
        )
        if raise_on_failure and not result.ok:
            first = (result.missing or result.mismatched)[0]
            raise IntegrityError(
                f"version {v} is damaged: {len(result.missing)} missing and {len(result.mismatched)} changed "
                f"object(s) (first: {first}).",
                hint="Publish its build again with --repair (missing or changed objects are stored again); "
                     "meanwhile 'atomicsite rollback' serves the previous version.",
            )
        return result


def check_page(store: Store, path: str, *, channel: str, where: str) -> None:
    """The page ``path`` (e.g. a SPA fallback) must be a file of the version ``channel`` serves now;
    nothing published yet is fine (there is nothing to check against)."""
    state = read_pointer(store, check_channel(channel))
    if state.pointer is None:
        return
    manifest = read_manifest(store, state.pointer.version)
    if path.lstrip("/") not in manifest.by_path:
        raise UsageError(f"{where}: {path!r} is not a file of version {manifest.version}, which {channel!r} serves.",
                         hint="Name a page the build has, e.g. --spa /index.html.")
