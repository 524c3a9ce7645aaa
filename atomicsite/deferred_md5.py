"""The build's MD5s, off the critical path, for stores that never prove bytes by MD5 (the local store).

Every manifest records each file's MD5 beside its sha256, because S3 and GCS listings prove bytes by
MD5 (docs/layout.md). The local store proves by sha256 only, so on it publish needs the MD5s for
one thing: writing the manifest at the commit. Computing them in the scan costs more CPU than the
sha256 (650 against 1,500 MB/s here) on the critical path. So there the scan computes only sha256
(``scan(md5=False)``), and this fills the MD5s in before the commit:

- a content whose MD5 a committed manifest already records (the current version's, which a tree
  publish reads anyway to find copy sources) is not read again: same sha256, same bytes, same MD5;
- the rest are read again in a background thread while publish plans and links, and hashed; a file
  whose size or mtime is not what the scan saw fails the publish (BuildDirError, before the commit),
  so no manifest ever pairs one content's sha256 with another's MD5.

Nothing the atomicity guarantee rests on changes: what is stored is still proven by sha256, and the
manifest is still written last, now with every MD5 filled in (``fill`` raises rather than leave one
empty).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from .errors import BuildDirError
from .manifest import FileEntry, Manifest
from .scan import ScannedFile, md5_of


class DeferredMd5:
    """``DeferredMd5(files).start(known)``, then ``fill(manifest)`` before the manifest is stored."""

    def __init__(self, files: Iterable[ScannedFile]):
        self._todo = [f for f in files if not f.entry.md5]
        self._md5: dict[str, str] = {}  # path -> MD5
        self._known: dict[str, str] = {}  # sha256 -> MD5, from committed manifests
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def learn(self, manifests: Iterable[Manifest]) -> DeferredMd5:
        """Take the MD5s committed manifests record for their contents (call before ``start``)."""
        for m in manifests:
            for f in m.files:
                if f.md5:
                    self._known.setdefault(f.sha256, f.md5)
        return self

    def start(self) -> DeferredMd5:
        """Hash what no manifest told us, in a background thread (the system calls and hashlib let
        go of the GIL, so it runs beside publish's own work)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="atomicsite-md5", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for f in self._todo:
                if self._stop.is_set():
                    return
                if f.entry.sha256 not in self._known:
                    self._md5[f.entry.path] = md5_of(f)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by fill()
            self._error = exc

    def stop(self) -> None:
        """Stop hashing (publish failed or finished without needing the MD5s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def fill(self, manifest: Manifest) -> Manifest:
        """``manifest`` with every empty MD5 filled in (waits for the background thread)."""
        if all(f.md5 for f in manifest.files):
            return manifest
        self.start()
        self._thread.join()
        if self._error is not None:
            raise self._error
        files = []
        for f in manifest.files:
            if not f.md5:
                md5 = self._known.get(f.sha256) or self._md5.get(f.path)
                if not md5:
                    raise BuildDirError(f"{f.path}: no MD5 was computed for it (not in the scan).",
                                        hint="Re-run 'atomicsite publish'.")
                f = FileEntry(**{**vars(f), "md5": md5})  # every field, whatever FileEntry holds
            files.append(f)
        return replace(manifest, files=tuple(files))

