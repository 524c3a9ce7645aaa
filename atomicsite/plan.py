"""The publish plan: a value computed by a pure function, printed by ``--dry-run``, run by publish.

For every file the plan says what will happen and why:

- ``skip``: the object is already stored under the new version with the right content (a resumed
  publish), or the whole version is already committed;
- ``copy``: an older complete version holds the same bytes: a server-side copy, no upload;
- ``upload``: nothing stored has these bytes.

Then whether the channel switches: ``switch``, ``already-live``, ``no-promote`` or ``pinned``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .channels import PointerState
from .layout import object_key
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

    def to_dict(self) -> dict:
        d = {"action": self.kind, "path": self.entry.path, "size": self.entry.size, "reason": self.reason}
        if self.source_key:
            d["from"] = self.source_key
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

    @property
    def version(self) -> str:
        return self.manifest.version

    def count(self, kind: str) -> int:
        return sum(1 for a in self.actions if a.kind == kind)

    def bytes_of(self, kind: str) -> int:
        return sum(a.entry.size for a in self.actions if a.kind == kind)

    def summary(self) -> dict:
        return {
            "version": self.version,
            "channel": self.channel,
            "files": len(self.actions),
            "bytes": self.manifest.total_bytes,
            "upload": {"files": self.count(UPLOAD), "bytes": self.bytes_of(UPLOAD)},
            "copy": {"files": self.count(COPY), "bytes": self.bytes_of(COPY)},
            "skip": {"files": self.count(SKIP), "bytes": self.bytes_of(SKIP)},
            "committed": self.committed,
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
) -> Plan:
    """Pure: decide every file's action.

    ``stored`` is what is already under ``v/<version>/`` (by path) and ``proven`` whether each of those
    objects was shown to hold the right bytes. ``known`` are complete older versions to copy from.
    """
    by_sha: dict[str, tuple[str, str]] = {}
    for old in known:
        if old.version == manifest.version:
            continue
        for f in old.files:
            by_sha.setdefault(f.sha256, (old.version, f.path))
    actions = []
    for entry in manifest.files:
        key = object_key(manifest.version, entry.path)
        if committed:
            actions.append(FileAction(SKIP, entry, key, "version already committed"))
            continue
        info = stored.get(entry.path)
        if info is not None and proven.get(entry.path):
            actions.append(FileAction(SKIP, entry, key, "already uploaded (resumed)"))
            continue
        source = by_sha.get(entry.sha256)
        if source:
            why = "same content in version " + source[0] + ("" if source[1] == entry.path else f" ({source[1]})")
            if info is not None:
                why = "stored copy differs; " + why
            actions.append(FileAction(COPY, entry, key, why, object_key(*source)))
            continue
        why = "stored object differs" if info is not None else "new content"
        actions.append(FileAction(UPLOAD, entry, key, why))
    switch, reason = decide_switch(pointer, manifest.version, promote=promote)
    return Plan(manifest, pointer.channel, pointer, tuple(actions), committed, switch, reason)
