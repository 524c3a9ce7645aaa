"""A plan's copies as one bulk hard-link call, where the store links files (the local store).

On the local store a copy is a hard link: a few system calls. Sent one by one through the transfer
pool (a thread hop, a Future) and the retry wrapper (a tenacity loop), each cost several times the
link itself: at 50,000 files, seconds. Local file system calls are not transient, so nothing needs
retrying, and a loop in one thread is faster than a pool. So where the store has ``link_many``
(:meth:`atomicsite.stores.local.LocalStore.link_many`), the copies go there in one call and the rest
of the plan (uploads) through :func:`atomicsite.transfer.run_transfers` as before.

Nothing changes in what proves a file: each link's answer is the stored object's info, which proves
the content by the inode it links (docs/layout.md, "Objects"), and publish verifies it exactly as it
verifies a copy's. A source that is gone (pruned meanwhile) becomes an upload of the build file, as
a failed ``copy`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from .plan import COPY, UPLOAD, FileAction
from .stores.base import ObjectInfo, Store
from .transfer import Progress, run_one, run_transfers


def can_link(store: Store) -> bool:
    """Whether ``store`` (or the store it wraps) makes copies by hard links in bulk."""
    return hasattr(store, "link_many")


def run_links(store: Store, actions: Iterable[FileAction], sources: Mapping[str, Path], *,
              on_done: Progress | None = None) -> dict[str, ObjectInfo]:
    """Link every copy action's source to its key in one ``link_many`` call; receipts by path."""
    actions = list(actions)
    receipts: dict[str, ObjectInfo] = {}
    # link_many answers each pair in order
    for action, (_, info) in zip(actions, store.link_many((a.source_key, a.key) for a in actions)):
        if info is None:  # the source is gone: upload the build file
            info = run_one(store, replace(action, kind=UPLOAD), sources[action.entry.path])
        receipts[action.entry.path] = info
        if on_done:
            on_done(action)
    return receipts


def transfer(store: Store, actions: Iterable[FileAction], sources: Mapping[str, Path], *, workers: int,
             on_done: Progress | None = None) -> dict[str, ObjectInfo]:
    """:func:`run_transfers`, with the copies linked in bulk where the store can (see the module doc)."""
    if not can_link(store):
        return run_transfers(store, actions, sources, workers=workers, on_done=on_done)
    actions = list(actions)
    receipts = run_transfers(store, [a for a in actions if a.kind != COPY], sources, workers=workers,
                             on_done=on_done)
    receipts.update(run_links(store, [a for a in actions if a.kind == COPY], sources, on_done=on_done))
    return receipts
