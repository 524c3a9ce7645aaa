"""Run a plan's transfers concurrently; report progress; stop at the first permanent failure.

Retries happen below, in :class:`atomicsite.retry.RetryingStore`; this module only fans out.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .errors import BuildDirError, ObjectNotFound
from .plan import COPY, SKIP, FileAction
from .stores.base import SHA256_META, ObjectInfo, Store, trait

Progress = Callable[[FileAction], None]


def run_one(store: Store, action: FileAction, source: Path) -> ObjectInfo:
    """Copy or upload one file. A copy whose source object is gone (pruned meanwhile) becomes an upload."""
    e = action.entry
    headers = {"content_type": e.content_type, "cache_control": e.cache_control, "metadata": {SHA256_META: e.sha256}}
    extra = dict(action.extra)  # Content-Disposition / Content-Language from _headers rules
    if action.encoding:  # a compressed variant: served with its Content-Encoding (atomicsite.compress)
        extra["content-encoding"] = action.encoding
    if extra:
        headers["extra_headers"] = extra
    if action.kind == COPY:
        try:
            return store.copy(action.source_key, action.key, size=e.size, **headers)
        except ObjectNotFound:
            pass
    if callable(source):  # a reused variant's record whose older object is gone (atomicsite.compress.Remake)
        source = source()
    try:
        return store.put(action.key, source, **headers)
    except OSError as exc:
        if exc.filename is None or Path(exc.filename) != source:
            raise  # not about the build file
        # reading the build file failed: the build dir changed under us
        raise BuildDirError(f"{source}: cannot read it any more ({exc.strerror or exc}).",
                            hint="Did the build dir change during publish? Re-run when the build is done.") from None


def run_transfers(
    store: Store, actions: Iterable[FileAction], sources: Mapping[str, Path], *, workers: int = 32,
    on_done: Progress | None = None,
) -> dict[str, ObjectInfo]:
    """Upload or copy every non-skip action; return what the store reported, by path. ``workers`` is
    capped by the store's ``transfer_workers`` where it has one (the local store: see there)."""
    todo = [a for a in actions if a.kind != SKIP]
    receipts: dict[str, ObjectInfo] = {}
    if not todo:
        return receipts
    limit = trait(store, "transfer_workers", None)
    workers = max(1, min(workers, len(todo), limit or workers))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="atomicsite-transfer")
    # A bounded window of submitted work, not one Future per file up front: a Future with its
    # condition and work item is ~3 KB, so 200,000 files held ~600 MB of them at once
    # (bench/bench_publish.py --only rss). Completions arrive on a queue, in completion order, so
    # progress moves as work lands and each completion costs O(1).
    done: queue.SimpleQueue[Future] = queue.SimpleQueue()
    pending: dict[Future, FileAction] = {}
    remaining = iter(todo)

    def submit_next() -> None:
        action = next(remaining, None)
        if action is not None:
            fut = pool.submit(run_one, store, action, sources[action.entry.path])
            pending[fut] = action
            fut.add_done_callback(done.put)

    try:
        for _ in range(workers * 4):
            submit_next()
        while pending:
            fut = done.get()
            action = pending.pop(fut)
            receipts[action.entry.path] = fut.result()  # re-raises the first failure
            if on_done:
                on_done(action)
            submit_next()
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: say so now, not after the transfers in flight finish (a CI runner kills
        # the job a few seconds after SIGTERM); what they leave is a partial upload a re-run resumes.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    except BaseException:
        # On failure, drop what has not started; what is running finishes (a partial upload is harmless).
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return receipts
