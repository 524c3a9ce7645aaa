"""The publish plan: a value computed by a pure function, printed by ``--dry-run``, run by publish.

For every file the plan says what will happen and why:

- ``skip``: the object is already stored under the new version with the right content (a resumed
  publish), the content is already in the objects pool, or the whole version is already committed;
- ``copy``: an older complete version holds the same bytes: a server-side copy, no upload;
- ``upload``: nothing stored has these bytes.

Compressed variants (atomicsite.compress) are objects like files: an action each, ``encoding`` set,
copied only from an older object of the same encoding (its Content-Encoding must come along).

In the objects layout the actions put contents into the pool; on the local store ``links`` then
hard-link each file from the pool into the version's tree, which plain web servers serve.

Then whether the channel switches: ``switch``, ``already-live``, ``no-promote`` or ``pinned``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .channels import PointerState
from .layout import content_key, object_key, pool_key
from .manifest import FileEntry, Manifest
from .stores.base import ObjectInfo

SKIP, COPY, UPLOAD = "skip", "copy", "upload"
SWITCH, ALREADY_LIVE, NO_PROMOTE, PINNED = "switch", "already-live", "no-promote", "pinned"


@dataclass(frozen=True)
class FileAction:
    kind: str  # SKIP | COPY | UPLOAD
    entry: FileEntry
    key: str  # destination key
    reason: str
    source_key: str | None = None  # for COPY
    encoding: str | None = None  # a compressed variant ("br", "gzip"): stored with that Content-Encoding
    extra: tuple[tuple[str, str], ...] = ()  # Content-Disposition / Content-Language from _headers rules

    def to_dict(self) -> dict:
        d = {"action": self.kind, "path": self.entry.path, "size": self.entry.size, "reason": self.reason}
        if self.source_key:
            d["from"] = self.source_key
        if self.encoding:
            d["encoding"] = self.encoding
        return d


@dataclass(frozen=True)
class Plan:
    manifest: Manifest
    channel: str
    pointer: PointerState
    actions: tuple[FileAction, ...]
    committed: bool  # the version's manifest is already stored: nothing to transfer or commit
    switch: str
    switch_reason: str
    links: tuple[FileAction, ...] = ()  # objects layout on the local store: pool -> v/<version>/ hard links

    @property
    def version(self) -> str:
        return self.manifest.version

    def count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    def bytes_of(self, kind: str) -> int:
        return sum(a.entry.size for a in self.actions if a.kind == kind)

    def summary(self) -> dict:
        variants = [a for a in self.actions if a.encoding]
        return {
            "version": self.version,
            "channel": self.channel,
            "files": len(self.actions) - len(variants),
            "variants": {"files": len(variants), "bytes": sum(a.entry.size for a in variants)},
            "bytes": self.manifest.total_bytes,
            "upload": {"files": self.count(UPLOAD), "bytes": self.bytes_of(UPLOAD)},
            "copy": {"files": self.count(COPY), "bytes": self.bytes_of(COPY)},
            "skip": {"files": self.count(SKIP), "bytes": self.bytes_of(SKIP)},
            "committed": self.committed,
            "layout": self.manifest.layout,
            "live_before": self.pointer.version,
            "switch": self.switch,
            "switch_reason": self.switch_reason,
        }

    def to_dict(self) -> dict:
        return {**self.summary(), "actions": [a.to_dict() for a in self.actions]}


def decide_switch(pointer: PointerState, version: str, *, promote: bool) -> tuple[str, str]:
    p = pointer.pointer
    if p and p.version == version:
        return ALREADY_LIVE, f"channel {pointer.channel!r} already serves {version}"
    if not promote:
        return NO_PROMOTE, "--no-promote: committed but not switched; run 'atomicsite promote' to go live"
    if p and p.pinned:
        return PINNED, (f"channel {pointer.channel!r} is pinned to {p.version}: committed but not switched; "
                        f"'atomicsite unpin' then 'atomicsite promote {version}' to go live")
    if p:
        return SWITCH, f"{pointer.channel!r} moves from {p.version} to {version}"
    return SWITCH, f"{pointer.channel!r} is created at {version}"


def make_plan(
    manifest: Manifest,
    pointer: PointerState,
    *,
    committed: bool,
    stored: Mapping[str, ObjectInfo],
    proven: Mapping[str, bool],
    known: Iterable[Manifest],
    promote: bool = True,
    link_trees: bool = False,
    keeps_extra_headers: bool = True,
) -> Plan:
    """Pure: decide every file's action (tree layout).

    ``stored`` is what is already under ``v/<version>/`` (by path) and ``proven`` whether each of those
    objects was shown to hold the right bytes. ``known`` are complete older versions to copy from.
    ``keeps_extra_headers``: whether the store's objects carry Content-Disposition/Content-Language
    (not the local store's): where they do not, a changed rule for them cannot make a copy wrong.
    """
    # A copy source must have the same encoding and stored extra headers: a GCS rewrite keeps the
    # source's value of a field the destination leaves unset, so they must already agree.
    # (sha256, encoding, extras) -> (old manifest, its stored entry): the first that has it wins; its
    # key is made only when a file of this build uses it
    by_sha: dict[tuple, tuple[Manifest, FileEntry]] = {}
    for old in known:
        if old.version == manifest.version:
            continue
        extras = old.stored_extra if keeps_extra_headers else {}
        for f, enc in old.stored:
            by_sha.setdefault((f.sha256, enc, extras.get(f.path, ())), (old, f))
    same_in = {old.version: "same content in version " + old.version for old in known}
    actions = []
    extras = manifest.stored_extra if keeps_extra_headers else {}
    for entry, enc in manifest.stored:
        key = object_key(manifest.version, entry.path)
        extra = extras.get(entry.path, ())
        if committed:
            actions.append(FileAction(SKIP, entry, key, "version already committed", encoding=enc, extra=extra))
            continue
        info = stored.get(entry.path)
        if info is not None and proven.get(entry.path):
            actions.append(FileAction(SKIP, entry, key, "already uploaded (resumed)", encoding=enc, extra=extra))
            continue
        source = by_sha.get((entry.sha256, enc, extra))
        if source:
            old, f = source
            source_key = content_key(old.version, old.layout, f.path, f.sha256, link_trees=link_trees)
            why = same_in[old.version] if source_key.endswith("/" + entry.path) else \
                f"{same_in[old.version]} ({source_key})"
            if info is not None:
                why = "stored copy differs; " + why
            actions.append(FileAction(COPY, entry, key, why, source_key, encoding=enc, extra=extra))
            continue
        why = "stored object differs" if info is not None else "new content"
        actions.append(FileAction(UPLOAD, entry, key, why, encoding=enc, extra=extra))
    switch, reason = decide_switch(pointer, manifest.version, promote=promote)
    return Plan(manifest, pointer.channel, pointer, tuple(actions), committed, switch, reason)


def make_objects_plan(
    manifest: Manifest,
    pointer: PointerState,
    *,
    committed: bool,
    pool_proven: Mapping[str, bool],
    tree: Mapping[str, ObjectInfo] | None = None,
    tree_proven: Mapping[str, bool] | None = None,
    promote: bool = True,
) -> Plan:
    """Pure: decide every file's action (objects layout).

    ``pool_proven`` is, for each content of the build found in the objects pool, whether the object
    is shown to hold its bytes. ``tree`` (the local store only) is what is already linked under ``v/<version>/``.
    Each distinct new content is uploaded once; a second file with it waits for the first.
    """
    actions, links = [], []
    first_of: dict[str, str] = {}
    for entry, enc in manifest.stored:
        key = pool_key(entry.sha256)
        # pool objects are shared by content: the headers of the first upload stay, as for Content-Type
        extra = manifest.stored_extra.get(entry.path, ())
        if committed:
            actions.append(FileAction(SKIP, entry, key, "version already committed", encoding=enc))
            continue
        if pool_proven.get(entry.sha256):
            actions.append(FileAction(SKIP, entry, key, "content already in the pool", encoding=enc))
        elif entry.sha256 in first_of:
            actions.append(FileAction(SKIP, entry, key, f"same content as {first_of[entry.sha256]}, uploaded once",
                                      source_key=key, encoding=enc))
        else:
            first_of[entry.sha256] = entry.path
            why = "pool object differs" if entry.sha256 in pool_proven else "new content"
            actions.append(FileAction(UPLOAD, entry, key, why, encoding=enc, extra=extra))
        if tree is not None:
            if tree_proven and tree_proven.get(entry.path):
                continue
            links.append(FileAction(COPY, entry, object_key(manifest.version, entry.path), "link from the pool", key,
                                    encoding=enc))
    switch, reason = decide_switch(pointer, manifest.version, promote=promote)
    return Plan(manifest, pointer.channel, pointer, tuple(actions), committed, switch, reason, tuple(links))


__all__ = ["Plan", "FileAction", "make_plan", "make_objects_plan", "decide_switch", "SKIP", "COPY", "UPLOAD",
           "SWITCH", "ALREADY_LIVE", "NO_PROMOTE", "PINNED"]
