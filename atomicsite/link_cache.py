"""What the link gate found in each page last time, so a page that did not change is not read again.

The gate (:mod:`atomicsite.links`) reads and parses every HTML page and stylesheet of a build and
resolves each reference against the page's path. For one page, that result depends only on the
page's path and its bytes (and on the code that extracts and resolves references): so it is kept per
path with the page's sha256 (computed by the scan anyway), and a page whose path and sha256 match is
not read, parsed or resolved again. Only *checking* each resolved target against the build's files
runs every time, because that depends on the whole build (a page that did not change can still
reference a file that was removed). On a 50,000-file site where ten files changed, the gate goes
from reading and parsing 27,500 documents to reading a few.

Where: one file per build dir (``links-<hash of its absolute path>.json``) in ``ATOMICSITE_CACHE_DIR``,
else ``$XDG_CACHE_HOME/atomicsite``, else ``~/.cache/atomicsite``; ``ATOMICSITE_CACHE_DIR=off`` turns
it off. Why that is safe:

- it is derived data, never a proof: nothing the atomicity guarantee rests on reads it;
- an entry is used only when the page's sha256 matches, so a stale entry is never used; the file
  records a ``key`` (this module's format, atomicsite's and selectolax's versions), so a cache
  written by other extraction code is dropped whole;
- written to a temp file and renamed, so a reader sees a whole cache or the previous one; two
  publishes of one build dir at once each write a valid cache (the last rename wins);
- anything unreadable (corrupt, another format, no permission) is ignored, as is a failed write:
  the gate then does its full work, as it did before there was a cache;
- it holds the pages of the last publish of that build dir only, so it stays the size of one site.

It lives in the user's cache directory, not in the build dir (the user's, often wiped by the build)
nor in the target (another machine's cache would be a remote file to trust). Whoever can write it
could make the gate miss a broken reference, which is no more than they could do to the build.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import secrets
from pathlib import Path

from . import __version__

FORMAT = 1
OFF = "off"


def cache_dir() -> Path | None:
    """Where link caches live, or None when caching is off."""
    configured = os.environ.get("ATOMICSITE_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in (OFF, "") else Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "atomicsite"


@functools.cache
def _key() -> str:
    """What the cached results depend on besides a page's path and bytes: the code that made them."""
    try:
        from importlib.metadata import version

        parser = version("selectolax")
    except Exception:  # noqa: BLE001 - an unknown parser version only means the key never matches twice
        parser = "unknown"
    return f"links/{FORMAT} atomicsite/{__version__} selectolax/{parser}"


class LinkCache:
    """``LinkCache.for_build("dist")``: per page path, its sha256 and resolved same-site targets.

    Stored as ``{"key": …, "targets": [target, …], "pages": {path: [sha256, i, …]}, "compact": n}``: each target
    (``assets/app.js``) once in a table, and per page the index of each of its references' targets,
    in document order, duplicates kept so counts stay exact; ``i`` for a resource, ``~i`` (that is
    ``-i - 1``) for a page link.
    """

    def __init__(self, path: Path | None, pages: dict[str, list] | None = None, targets: list[str] | None = None,
                 compact: int = 0):
        self.path = path
        self.targets: list[str] = targets or []
        self._compact = compact  # the table's length when it was last compacted
        self._old = pages or {}
        self._new: dict[str, list] = {}
        self._index: dict[str, int] | None = None  # target -> index, built on the first put
        self._changed = False

    @classmethod
    def for_build(cls, build_dir: str | Path) -> LinkCache:
        where = cache_dir()
        if where is None:
            return cls(None)
        name = hashlib.sha256(os.fsencode(os.path.abspath(build_dir))).hexdigest()[:24]
        path = where / f"links-{name}.json"
        return cls(path, *_load(path))

    def get(self, page: str, sha256: str) -> list | None:
        """``[sha256, i, …]`` cached for the page at these bytes (see the class doc), else None."""
        found = self._old.get(page)
        if found is None or found[0] != sha256:
            return None
        self._new[page] = found
        return found

    def put(self, page: str, sha256: str, refs: list[tuple[bool, str]]) -> None:
        """Record a page's ``(is_resource, target)`` references."""
        if self._index is None:
            self._index = {t: i for i, t in enumerate(self.targets)}
        index, table = self._index, self.targets
        row: list = [sha256]
        for resource, target in refs:
            i = index.get(target)
            if i is None:
                i = index[target] = len(table)
                table.append(target)
            row.append(i if resource else ~i)
        self._new[page] = row
        if row != self._old.get(page):  # a page read again only to name its findings: nothing new
            self._changed = True

    def save(self) -> None:
        """Write what this run used, if it differs from what was read (best effort)."""
        if self.path is None or not (self._changed or len(self._new) != len(self._old)):
            return
        # Renumbering 240,000 references costs more than the rest of the save: the table is only
        # compacted once it has grown by half since it last was (new targets are appended; a
        # removed page's are left behind), so it stays within 1.5x what the site uses.
        pages, table, compact = self._new, self.targets, self._compact
        if len(table) > compact * 3 // 2 + 1000:
            pages, table = self._compacted()
            compact = len(table)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(json.dumps({"key": _key(), "targets": table, "pages": pages, "compact": compact},
                                       separators=(",", ":")).encode())
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _compacted(self) -> tuple[dict[str, list], list[str]]:
        """The rows of this run with only the targets they use, renumbered (the table stays within
        twice what the site uses, so the cache stays the size of one site)."""
        used: dict[int, int] = {}
        pages = {}
        for page, row in self._new.items():
            out = [row[0]]
            for i in row[1:]:
                j = i if i >= 0 else ~i
                k = used.setdefault(j, len(used))
                out.append(k if i >= 0 else ~k)
            pages[page] = out
        table = [""] * len(used)
        for j, k in used.items():
            table[k] = self.targets[j]
        return pages, table


def _load(path: Path) -> tuple[dict[str, list], list[str], int]:
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}, [], 0
    if not isinstance(raw, dict) or raw.get("key") != _key():
        return {}, [], 0
    pages, targets, compact = raw.get("pages"), raw.get("targets"), raw.get("compact")
    if (not isinstance(pages, dict) or not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)
            or type(compact) is not int):
        return {}, [], 0
    n = len(targets)
    # A row must be a list starting with the page's sha256; its indexes are checked where they are
    # used (links._check_cached), where one outside the table makes that page be read again.
    return {p: row for p, row in pages.items() if type(row) is list and row and type(row[0]) is str}, \
        targets, min(compact, n)
