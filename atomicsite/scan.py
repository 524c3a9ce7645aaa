"""Build dir → the files to publish, each with its sha256, MD5, size and headers.

Symlinks that stay inside the build dir are followed (a link to a directory is walked once; a loop is
an error); a symlink that leaves it is an error naming the link, because publishing whatever it points
at (``~/.ssh``, ``/etc``) is never what the user meant. Paths become POSIX, NFC-normalised keys.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .errors import BuildDirError
from .headers import HeaderRule, headers_for
from .manifest import FileEntry

# Dotfiles and dot-directories (.env, .git/, .DS_Store) are never meant for visitors; .well-known/
# (security.txt, ACME challenges, app links) is, so it is let back in by a '!' glob.
DEFAULT_IGNORE = (".*", "!.well-known", "Thumbs.db", "desktop.ini", "*.swp", "*~")
SITE_RULE_FILES = ("_redirects", "_headers")  # rules, read by atomicsite.routing.build: never served
MAX_KEY_BYTES = 900  # S3 allows 1024 bytes per key; leave room for "<prefix>/v/<version>/"
_CHUNK = 1 << 20
_WHOLE = 4 << 20  # files up to this size are read in one call
# Threads that hash the large files (at least _BIG bytes; smaller ones are hashed inline, see scan).
SCAN_WORKERS = min(4, os.cpu_count() or 1)
_BIG = 256 << 10
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class ScannedFile:
    """One file of the build: its manifest ``entry`` and ``source``, the real file on disk (a Path).

    The Path is made when first asked for: publish reads the files of a few uploads and pages
    again, and making 50,000 Paths up front cost ~0.2 s of CPU for nothing.
    """

    __slots__ = ("entry", "_source")

    def __init__(self, entry: FileEntry, source: Path | str):
        self.entry = entry
        self._source = source

    @property
    def source(self) -> Path:
        if not isinstance(self._source, Path):
            self._source = Path(self._source)
        return self._source

    def with_entry(self, entry: FileEntry) -> ScannedFile:
        """The same file on disk with another entry (headers set by ``_headers`` rules)."""
        return ScannedFile(entry, self._source)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ScannedFile):
            return NotImplemented
        return self.entry == other.entry and str(self._source) == str(other._source)

    def __hash__(self) -> int:
        return hash((self.entry, str(self._source)))

    def __repr__(self) -> str:
        return f"ScannedFile(entry={self.entry!r}, source={str(self._source)!r})"


class Sources(Mapping):
    """Build path → real file (a Path), for the files publish sends; Paths made on demand. ``extra``:
    more objects to send by tree path, as they are (compressed variants, atomicsite.compress)."""

    def __init__(self, files: Iterable[ScannedFile], extra: Mapping | None = None):
        self._by_path = {f.entry.path: f for f in files}
        self._extra = dict(extra or {})

    def __getitem__(self, path: str):
        found = self._by_path.get(path)
        return found.source if found is not None else self._extra[path]

    def __iter__(self):
        yield from self._by_path
        yield from (p for p in self._extra if p not in self._by_path)

    def __len__(self) -> int:
        return len(self._by_path) + sum(1 for p in self._extra if p not in self._by_path)


class _Ignore:
    """Ignore globs compiled once: those without '/' match a name anywhere, the others the whole path.

    A glob starting with ``!`` lets back in what it matches, whatever the order (``!.well-known``).
    """

    def __init__(self, patterns: tuple[str, ...]):
        self._drop = _Globs([p for p in patterns if not p.startswith("!")])
        self._keep = _Globs([p[1:] for p in patterns if p.startswith("!") and len(p) > 1])

    def __call__(self, rel: str, name: str) -> bool:
        return self._drop(rel, name) and not self._keep(rel, name)


class _Globs:
    def __init__(self, globs: list[str]):
        def union(some):
            return re.compile("|".join(fnmatch.translate(g) for g in some)) if some else None

        self._names = union([g for g in globs if "/" not in g])
        self._paths = union([g for g in globs if "/" in g])

    def __call__(self, rel: str, name: str) -> bool:
        return bool((self._names and self._names.match(name)) or (self._paths and self._paths.match(rel)))


_BAD_KEY_CHAR = re.compile(r"[\x00-\x1f\x7f\\]")


def _check_key(rel: str, shown: Path | str) -> str:
    ascii_only = rel.isascii()  # most names: no encoding to check, and bytes == characters
    if not ascii_only:
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            raise BuildDirError(
                f"{shown}: the file name is not valid UTF-8 and cannot be an object key.", hint="Rename the file."
            ) from None
    bad = _BAD_KEY_CHAR.search(rel)
    if bad is not None:
        raise BuildDirError(
            f"{shown}: the name holds {bad.group()!r}, which cannot be part of an object key on every store.",
            hint="Rename the file.",
        )
    if (len(rel) if ascii_only else len(rel.encode("utf-8"))) > MAX_KEY_BYTES:
        raise BuildDirError(f"{shown}: the path is longer than {MAX_KEY_BYTES} bytes.", hint="Shorten it.")
    return rel


def _walk(root: Path, ignore: tuple[str, ...],
          on_ignored: Callable[[str], None] | None = None) -> list[tuple[str, str]]:
    """(key, real path) for every regular file, following links that stay inside ``root``."""
    real_root = root.resolve()
    ignored = _Ignore(ignore)
    found: list[tuple[str, Path]] = []

    def inside(p: str) -> bool:
        return p == str(real_root) or p.startswith(str(real_root) + os.sep)

    def visit(directory: str, rel_dir: str, ancestors: frozenset[str], real: str) -> None:
        # A link to a sibling dir just publishes it twice; a link to an ancestor would never end.
        # ``real``: the directory's real path (the caller knows it without asking the OS when the
        # entry is not a link: its parent's real path and its name).
        if real in ancestors:
            raise BuildDirError(
                f"{directory}: a symlink loop (it leads back to a directory above it).", hint="Remove the looping link."
            )
        ancestors = ancestors | {real}
        try:
            entries = sorted(os.scandir(directory), key=_entry_name)
        except PermissionError:
            raise BuildDirError(f"{directory}: cannot read this directory (permission denied).",
                                hint="Fix its permissions or add it to ignore.") from None
        for entry in entries:
            name = entry.name
            if not name.isascii():
                name = unicodedata.normalize("NFC", name)
            rel = f"{rel_dir}{name}"
            if not rel_dir and name in SITE_RULE_FILES:
                continue
            if ignored(rel, name):
                if on_ignored:
                    on_ignored(rel + "/" if entry.is_dir() else rel)
                continue
            path = entry.path
            target = None
            if entry.is_symlink():
                target = os.path.realpath(path)
                if not inside(target):
                    raise BuildDirError(
                        f"{path}: this symlink points outside the build dir (to {target}).",
                        hint="Copy the file into the build dir, or remove the link.",
                    )
                if not os.path.exists(target):
                    raise BuildDirError(f"{path}: this symlink is broken.", hint="Fix or remove it.")
                try:
                    mode = os.stat(path).st_mode
                except PermissionError:
                    raise BuildDirError(f"{path}: cannot read it (permission denied).",
                                        hint="Fix its permissions.") from None
                is_dir, is_file = stat.S_ISDIR(mode), stat.S_ISREG(mode)
            else:
                # the directory listing's file type: no stat per file (a file we cannot read is
                # reported when it is hashed)
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = not is_dir and entry.is_file(follow_symlinks=False)
            if is_dir:
                visit(path, rel + "/", ancestors, target or f"{real.rstrip(os.sep)}{os.sep}{entry.name}")
            elif is_file:
                found.append((_check_key(rel, path), path))
            # sockets, fifos, devices: not content; skipped on purpose

    visit(str(root), "", frozenset(), str(real_root))
    return found


def _entry_name(entry: os.DirEntry) -> str:
    return entry.name


def _open(path: str) -> tuple[int, int]:
    """``(fd, size)`` of a build file, or a one-line BuildDirError."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except PermissionError:
        raise BuildDirError(f"{path}: cannot read it (permission denied).", hint="Fix its permissions, or ignore it.") from None
    except OSError as exc:
        raise BuildDirError(f"{path}: cannot read it ({exc.strerror}).") from None
    try:
        return fd, os.fstat(fd).st_size
    except OSError as exc:
        os.close(fd)
        raise BuildDirError(f"{path}: cannot read it ({exc.strerror}).") from None


def _digest(path: str, fd: int, size: int, md5: bool) -> tuple[str, str, int]:
    """``(sha256, md5 or "", size)`` of the open file ``fd``, which it closes."""
    try:
        if size <= _WHOLE:
            # Most site files: one read (asking one byte more than the size tells EOF without a
            # second call), then each digest over the whole bytes.
            data = os.read(fd, size + 1)
            if len(data) != size:  # it changed size meanwhile, or a short read: read on to the end
                data += _read_rest(fd)
            return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest() if md5 else "", len(data)
        sha, sum5, size = hashlib.sha256(), hashlib.md5() if md5 else None, 0
        while chunk := os.read(fd, _CHUNK):
            sha.update(chunk)
            if sum5:
                sum5.update(chunk)
            size += len(chunk)
        return sha.hexdigest(), sum5.hexdigest() if sum5 else "", size
    except OSError as exc:
        raise BuildDirError(f"{path}: cannot read it ({exc.strerror}).") from None
    finally:
        os.close(fd)


def _read_rest(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, _CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def scan(
    build_dir: str | Path,
    *,
    rules: tuple[HeaderRule, ...] = (),
    ignore: tuple[str, ...] = DEFAULT_IGNORE,
    workers: int = SCAN_WORKERS,
    md5: bool = True,
    on_file: Callable[[int], None] | None = None,
    on_ignored: Callable[[str], None] | None = None,
) -> list[ScannedFile]:
    """Scan ``build_dir``; ``scan("dist")[0].entry.sha256``. ``md5=False`` leaves each entry's md5 empty
    (for a store that never proves bytes by MD5: the local store). ``on_file(size)`` is called per hashed file,
    ``on_ignored(path)`` per ignored file or directory (``.git/``, whose contents are not listed)."""
    root = Path(build_dir)
    if not root.exists():
        raise BuildDirError(f"build dir {root} does not exist.", hint="Build the site first, or pass the right directory.")
    if not root.is_dir():
        raise BuildDirError(f"build dir {root} is not a directory.", hint="Pass the folder your site builds into (e.g. ./dist).")
    listed = _walk(root, ignore, on_ignored)
    if not listed:
        raise BuildDirError(f"build dir {root} has no files to publish.", hint="Build the site first; check your ignore rules.")
    keys: dict[str, str] = {}
    for key, path in listed:
        if key in keys:
            raise BuildDirError(
                f"{path} and {keys[key]} both become the key {key!r} (same name after unicode normalisation).",
                hint="Rename one of them.",
            )
        keys[key] = path

    def entry(key: str, path: str, digests: tuple[str, str, int]) -> ScannedFile:
        sha, sum5, size = digests
        if on_file:
            on_file(size)
        h = headers_for(key, rules)
        return ScannedFile(FileEntry(key, sha, size, sum5, h.content_type, h.cache_control), path)

    # Small files (most of a site) are read and hashed here, in one thread: each costs a few
    # microseconds of hashing against its Python work, which holds the GIL, so threads only took
    # turns (50,000 files: 1.2 s in one thread, 1.4 s in two, 1.8 s in three). A large file is
    # hashed by a worker, hashlib letting go of the GIL, while this thread goes on.
    found: list[ScannedFile | None] = []
    big: list[tuple[int, str, str, Future]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for key, path in listed:
            fd, size = _open(path)
            if size >= _BIG and workers > 0:  # opened again by the worker: no fds pile up in its queue
                os.close(fd)
                big.append((len(found), key, path, pool.submit(lambda p: _digest(p, *_open(p), md5), path)))
                found.append(None)
            else:
                found.append(entry(key, path, _digest(path, fd, size, md5)))
        for i, key, path, digests in big:
            found[i] = entry(key, path, digests.result())
    return found
