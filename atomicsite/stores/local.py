"""The local-filesystem store: objects are plain files under a root directory.

Every write goes to a temp file beside its destination and lands with ``os.replace`` (or ``os.link``
for create-only writes), so a reader never sees half a file. Conditional writes of pointers happen
under an ``flock`` on ``_atomicsite/.lock``, which serialises publishers across processes.

The live channel also has a ``current`` symlink at the root, pointing at ``v/<version>``, so a plain
web server (``root /srv/site/current;``) serves exactly one version and moves all at once: the link is
swapped with ``os.replace`` under the same lock as the pointer write, right after it.

The local store keeps no per-object headers: the manifest holds Content-Type and Cache-Control, and
whatever serves ``current`` sets its own. ``sha256`` is computed from the bytes (and cached per inode).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import secrets
import shutil
import stat
import struct
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..errors import (
    AccessDenied,
    AlreadyExists,
    ObjectNotFound,
    PreconditionFailed,
    StoreError,
    UsageError,
)
from ..layout import POOL
from .base import Body, IfMatch, ObjectInfo, PutMode, WriteMode

TMP_MARK = ".atomicsite-tmp-"
LIVE_POINTER_KEY = "_atomicsite/channels/live.json"
CURRENT_LINK = "current"
_LOCK_KEY = "_atomicsite/.lock"
_MANIFESTS = "_atomicsite/manifests/"
_CHUNK = 1 << 20


_SHA_XATTR = "user.atomicsite.sha256"


_STAMP = struct.Struct("<32sqQ")  # sha256 digest, mtime_ns, size: 48 bytes


def _record_sha256(path: Path | str, sha: str, sig: tuple[int, int, int]) -> None:
    """Keep the hash of what was written on the inode itself, stamped with its mtime and size.

    Hard links share the inode, so a version's tree linked from an older version or the objects pool
    is proven by the inode it links, in this process or any later one, without reading the bytes
    again; a file changed in place gets a new mtime, and its stamp no longer matches. Packed in 48
    bytes, so that it fits inside the inode on ext4 (the ~95-byte text form written before took a
    4 KB block of its own per file, doubling the disk a small file uses and slowing every read of
    it). Best effort: where the filesystem has no user xattrs, content is hashed as before."""
    with contextlib.suppress(OSError, AttributeError, ValueError, struct.error):
        os.setxattr(path, _SHA_XATTR, _STAMP.pack(bytes.fromhex(sha), sig[1], sig[2]))


def _recorded_sha256(path: Path | str, st: os.stat_result) -> str | None:
    try:
        raw = os.getxattr(path, _SHA_XATTR)
        if len(raw) == _STAMP.size:
            digest, mtime_ns, size = _STAMP.unpack(raw)
            sha = digest.hex()
        else:  # the text form earlier releases wrote: "<sha256 hex> <mtime_ns> <size>"
            sha, mtime_ns, size = raw.decode().split()
            mtime_ns, size = int(mtime_ns), int(size)
    except (OSError, AttributeError, ValueError, UnicodeDecodeError, struct.error):
        return None
    return sha if (mtime_ns, size) == (st.st_mtime_ns, st.st_size) and len(sha) == 64 else None


class LocalStore:
    """A store rooted at a directory. ``LocalStore("/srv/site")``; created on first write."""

    link_trees = True
    """Objects-layout versions get a hard-linked tree under ``v/<version>/`` too (atomicsite.layout)."""

    proves_by_md5 = False
    """Bytes are proven by sha256 (the inode's record, or hashing): a publish here computes no MD5."""

    keeps_extra_headers = False
    """Files carry no Content-Disposition/Content-Language here (the manifest does, for the router)."""

    transfer_workers = min(4, os.cpu_count() or 1)
    """At most this many uploads at once, whatever ``concurrency`` says: an upload here is system calls
    and Python work that holds the GIL, so past one thread per core they only take turns (a fresh
    50,000-file publish on 2 cores: 27 s with 32 threads, 21-22 s with 2)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.url = f"file://{self.root}"
        self._hash_cache: dict[tuple[int, int, int], str] = {}
        self._cache_lock = threading.Lock()

    # -- keys and files ---------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        if _bad_key(key):
            raise UsageError(f"invalid object key {key!r}")
        return self.root.joinpath(*key.split("/"))

    def path_of(self, key: str) -> Path:
        """The file that holds ``key`` (it may not exist): lets a server send it with sendfile."""
        return self._path(key)

    @staticmethod
    def _token(st: os.stat_result) -> str:
        return f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"

    def _info(self, key: str, path: Path | str, st: os.stat_result, *, hash_it: bool,
              recorded: bool = True) -> ObjectInfo:
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._cache_lock:
            sha = self._hash_cache.get(sig)
        if sha is None and recorded:
            sha = _recorded_sha256(path, st)
        if sha is None and hash_it:
            sha = _sha256_file(path)
            self._remember(sig, sha, path)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            token=self._token(st),
            sha256=sha,
            # ctime, not mtime: a hard-linked copy keeps the old mtime, and prune judges partial
            # uploads by age, so a copy made a second ago must not look days old
            modified=datetime.fromtimestamp(max(st.st_mtime, st.st_ctime), timezone.utc),
        )

    def _remember(self, sig: tuple[int, int, int], sha: str, path: Path | None = None) -> None:
        with self._cache_lock:
            if len(self._hash_cache) > 200_000:
                self._hash_cache.clear()
            self._hash_cache[sig] = sha
        if path is not None:
            _record_sha256(path, sha, sig)

    @contextlib.contextmanager
    def _locked(self):
        lock_path = self._path(_LOCK_KEY)
        with _os_errors(self, lock_path):
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _tmp_beside(self, path: Path) -> Path:
        return path.with_name(f"{TMP_MARK}{secrets.token_hex(6)}-{path.name}"[:255])

    # -- the protocol -----------------------------------------------------------------------------

    def put(
        self,
        key: str,
        source: bytes | Path,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        mode: PutMode = WriteMode.OVERWRITE,
        extra_headers: dict[str, str] | None = None,  # kept by the manifest, like the other headers
    ) -> ObjectInfo:
        path = self._path(key)
        with _os_errors(self, path):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._tmp_beside(path)
            try:
                if key.startswith(_MANIFESTS):
                    # The manifest says "every object is there": flush the objects written before it,
                    # so a power cut cannot leave a committed version with empty files.
                    _flush_filesystem(self.root)
                # pool objects are content like v/: the manifest commit flushes them all (above)
                sha = _write_tmp(tmp, source, durable=key.startswith("_atomicsite/") and not key.startswith(POOL))
                if isinstance(mode, IfMatch) or key.startswith("_atomicsite/channels/"):
                    with self._locked():
                        self._land(key, tmp, path, mode)
                        _fsync_dir(path.parent)
                        if key == LIVE_POINTER_KEY:
                            self._point_current(source)
                else:
                    self._land(key, tmp, path, mode)
                    if key.startswith(_MANIFESTS):
                        # the commit point: its name must survive a power cut before the pointer
                        # that relies on it is written (another directory, fsynced on its own)
                        _fsync_dir(path.parent)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            st = path.stat()
        self._remember((st.st_ino, st.st_mtime_ns, st.st_size), sha, path)
        return self._info(key, path, st, hash_it=False)

    def _land(self, key: str, tmp: Path, path: Path, mode: PutMode) -> None:
        if mode is WriteMode.CREATE:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise AlreadyExists(f"{key} already exists in {self.url}") from None
            return
        if isinstance(mode, IfMatch):
            try:
                current = self._token(path.stat())
            except FileNotFoundError:
                raise PreconditionFailed(f"{key} was deleted in {self.url} since it was read") from None
            if current != mode.token:
                raise PreconditionFailed(f"{key} changed in {self.url} since it was read")
        os.replace(tmp, path)

    def _point_current(self, pointer: bytes | Path) -> None:
        """Swap the ``current`` symlink to the live pointer's version (caller holds the lock)."""
        data = pointer.read_bytes() if isinstance(pointer, Path) else pointer
        try:
            version = json.loads(data)["version"]
        except (ValueError, KeyError, TypeError):
            return  # not a pointer we can follow: leave what nginx serves alone
        link = self.root / CURRENT_LINK
        if self.live_link_target() == f"v/{version}":
            return
        tmp = self._tmp_beside(link)
        os.symlink(f"v/{version}", tmp)
        try:
            os.replace(tmp, link)
        except OSError as exc:
            tmp.unlink()
            raise StoreError(f"cannot point {link} at v/{version}: {exc.strerror}.",
                             hint=f"Remove {link} if it is a real directory; atomicsite owns it as a symlink.") from None
        _fsync_dir(self.root)

    def sync_current(self) -> None:
        """Make ``current`` follow the live pointer again (after a crash between the two writes)."""
        with self._locked():
            try:
                self._point_current(self._path(LIVE_POINTER_KEY).read_bytes())
            except FileNotFoundError:
                pass

    def get(self, key: str) -> Body:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key, f"no object at {key!r} in {self.url}") from None
        except PermissionError:
            raise AccessDenied(f"cannot read {path}: permission denied.", hint="Check the file's permissions.") from None
        sha = hashlib.sha256(data).hexdigest()
        self._remember((st.st_ino, st.st_mtime_ns, st.st_size), sha)
        return Body(data, self._info(key, path, st, hash_it=False))

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        try:
            fh = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key, f"no object at {key!r} in {self.url}") from None

        def chunks() -> Iterator[bytes]:
            with fh:
                fh.seek(start)
                left = None if end is None else max(0, end - start)
                while left is None or left > 0:
                    chunk = fh.read(_CHUNK if left is None else min(_CHUNK, left))
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                    yield chunk

        return chunks()

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key, f"no object at {key!r} in {self.url}") from None
        if not path.is_file():
            raise ObjectNotFound(key, f"no object at {key!r} in {self.url}")
        return self._info(key, path, st, hash_it=True)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        # Walk only the directory the prefix names, and below it only directories the prefix allows.
        base_key = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.root.joinpath(*base_key.split("/")) if base_key else self.root
        if not base.is_dir():
            return iter(())
        found: list[tuple[str, str]] = []

        def walk(directory: str, rel_dir: str) -> None:
            try:
                entries = os.scandir(directory)
            except OSError:
                return  # gone or unreadable meanwhile: as os.walk, list what can be listed
            with entries:
                for entry in entries:
                    name = entry.name
                    key = rel_dir + name
                    if entry.is_dir(follow_symlinks=False):
                        if (rel_dir or name != CURRENT_LINK) and (key + "/").startswith(prefix):
                            walk(entry.path, key + "/")
                    elif not (name.startswith(TMP_MARK) or key == _LOCK_KEY or not key.startswith(prefix)):
                        found.append((key, entry.path))

        walk(str(base), f"{base_key}/" if base_key else "")
        found.sort()

        def infos() -> Iterator[ObjectInfo]:
            for key, path in found:
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    continue
                # A pool object's name is its hash: no need to read the hash kept on its inode
                # (the objects plan proves it by name and size; 'verify' re-hashes).
                yield self._info(key, path, st, hash_it=False, recorded=not key.startswith(POOL))

        return infos()

    def copy(
        self,
        src: str,
        dst: str,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        size: int | None = None,
        extra_headers: dict[str, str] | None = None,  # kept by the manifest, like the other headers
    ) -> ObjectInfo:
        src_path, dst_path = self._path(src), self._path(dst)
        if not src_path.is_file():
            raise ObjectNotFound(src, f"no object at {src!r} in {self.url}")
        with _os_errors(self, dst_path):
            dst_path.parent.mkdir(parents=True, exist_ok=True)
            # objects are immutable, so sharing an inode is safe
            if not _link_over(str(src_path), str(dst_path)):
                raise ObjectNotFound(src, f"no object at {src!r} in {self.url}")
            st = dst_path.stat()
        return self._info(dst, dst_path, st, hash_it=True)

    def link_many(self, links: Iterable[tuple[str, str]]) -> Iterator[tuple[str, ObjectInfo | None]]:
        """Hard-link many objects in one call: ``(src, dst)`` key pairs in, ``(dst, info)`` out as each
        lands, in order; ``info`` is None when ``src`` is gone (the caller uploads that file instead).

        What one ``copy`` per file does, without its per-file costs: publish builds a version's tree
        from an older version or the objects pool with it, where a link is a few system calls and a
        thread hop plus a retry wrapper per file cost more than the link itself (nothing here is
        transient, so there is nothing to retry). Each directory is created once. ``info`` proves the
        content by the inode, exactly as ``copy``'s does. One loop in the caller's thread: the calls
        are short, and handing each to a worker thread cost more than it (50,000 links took 1.4 s
        through one worker, 1.8 s through two and 2.3 s through four, against ~1 s inline, on 2 cores).
        It reads ``links`` as it goes, so a failure (raised here) stops it midway, leaving a partial
        tree that nothing points to and a re-run resumes.
        """
        root = f"{self.root}/"
        made: set[str] = set()
        for src, dst in links:
            for key in (src, dst):
                if _bad_key(key):
                    raise UsageError(f"invalid object key {key!r}")
            src_path, dst_path = root + src, root + dst
            try:
                parent = dst_path.rpartition("/")[0]
                if parent not in made:
                    os.makedirs(parent, exist_ok=True)
                    made.add(parent)
                if not _link_over(src_path, dst_path):
                    yield dst, None
                    continue
                st = os.stat(dst_path)
            except OSError as exc:
                _raise_os_error(self, Path(dst_path), exc)
                raise
            yield dst, self._info(dst, dst_path, st, hash_it=True)

    def delete_many(self, keys: Iterable[str]) -> None:
        failed: list[str] = []
        parents: set[Path] = set()
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
                parents.add(path.parent)
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed.append(f"{key} ({exc.strerror})")
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            _remove_empty_dirs(parent, self.root)
        if failed:
            raise StoreError(f"could not delete {len(failed)} object(s) in {self.url}: {', '.join(failed[:5])}")

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        path = self._path(key)
        if if_match is None:
            self.delete_many([key])
            return
        # Under the same lock as every conditional put, so no compare-and-swap lands between the
        # token check and the unlink.
        with _os_errors(self, path), self._locked():
            try:
                current = self._token(path.stat())
            except FileNotFoundError:
                raise PreconditionFailed(f"{key} was deleted in {self.url} since it was read") from None
            if current != if_match:
                raise PreconditionFailed(f"{key} changed in {self.url} since it was read")
            path.unlink()
            _fsync_dir(path.parent)
        _remove_empty_dirs(path.parent, self.root)

    def close(self) -> None:
        pass

    def live_link_target(self) -> str | None:
        """Where ``current`` points (``v/<version>``), or None."""
        try:
            return os.readlink(self.root / CURRENT_LINK)
        except OSError:
            return None


def _write_tmp(tmp: Path, source: bytes | Path, *, durable: bool) -> str:
    digest = hashlib.sha256()
    with open(tmp, "xb") as out:
        if isinstance(source, Path):
            with open(source, "rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        else:
            digest.update(source)
            out.write(source)
        if durable:
            out.flush()
            os.fsync(out.fileno())
    return digest.hexdigest()


def _flush_filesystem(root: Path) -> None:
    """Make everything written under ``root`` durable: ``syncfs(2)`` on its file system where there is
    one (Linux), else ``sync()``, which flushes every file system.

    Only the target's file system: what else the machine has dirty (a build's fresh output on another
    disk or a tmpfs, a download) is not the commit's to wait for. Every object a publish writes lands
    under ``root`` (temp files are made beside their key), so flushing its file system covers them."""
    syncfs = _libc_syncfs()
    if syncfs is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()  # no syncfs here, or it failed: flush everything, as before


@functools.cache
def _libc_syncfs():
    """libc's ``syncfs``, or None where it has none (macOS) or ctypes cannot load libc."""
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, ImportError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn


def _bad_key(key: str) -> bool:
    """A key no object may have: empty, an empty, ``.`` or ``..`` segment (a leading or doubled ``/``),
    or a NUL; checked without splitting, as it runs once per file of a link tree."""
    k = f"/{key}/"
    return not key or "//" in k or "/./" in k or "/../" in k or "\0" in key


def _link_over(src: str, dst: str) -> bool:
    """Hard-link ``src`` at ``dst``, replacing what is there (through a temp name, so ``dst`` is never
    missing or half-written); a copy where links are impossible. False when ``src`` does not exist."""
    try:
        os.link(src, dst)
        return True
    except FileExistsError:
        pass  # a resumed publish found a stored object that did not match: replace it
    except FileNotFoundError:
        return False
    except OSError:  # no hard links here (another file system, a link limit): copy, as copy() does
        if not os.path.isfile(src):
            return False
    head, _, name = dst.rpartition("/")
    tmp = f"{head}/{TMP_MARK}{secrets.token_hex(6)}-{name}"[: len(head) + 256]
    try:
        try:
            os.link(src, tmp)
        except FileNotFoundError:
            return False
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return True


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_empty_dirs(start: Path, root: Path) -> None:
    here = start
    while here != root and root in here.parents:
        try:
            here.rmdir()
        except OSError:
            return
        here = here.parent


@contextlib.contextmanager
def _os_errors(store: LocalStore, path: Path):
    """Turn the OS's refusals into one-line errors that name the path."""
    try:
        yield
    except OSError as exc:
        _raise_os_error(store, path, exc)
        raise


def _raise_os_error(store: LocalStore, path: Path, exc: OSError) -> None:
    """Raise the one-line error for ``exc`` where there is one (else return: the caller re-raises)."""
    if isinstance(exc, PermissionError) or exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        raise AccessDenied(
            f"cannot write to {path}: {exc.strerror or 'permission denied'}.",
            hint=f"Choose a target you can write to, or fix the permissions of {store.root}.",
        ) from None
    creating_dir = bool(exc.filename) and Path(exc.filename) in path.parents  # mkdir(parents=True) failed
    if exc.errno == errno.EEXIST and creating_dir:  # something that is not a directory stands there
        broken = next((p for p in (path, *path.parents) if p.is_symlink() and not p.exists()), None)
        what = f"{broken} is a broken symlink (to {os.readlink(broken)})" if broken else f"{exc.filename} is not a directory"
        raise AccessDenied(f"cannot write under {store.root}: {what}.",
                           hint="Point the target at a directory you can write to, or fix the link.") from None
    if exc.errno == errno.ENOENT and creating_dir:
        # a directory that cannot be created even though its parent exists: /proc, /sys, a dead mount
        raise AccessDenied(f"cannot create {exc.filename}: {exc.strerror}.",
                           hint="Choose a target on a normal, writable file system.") from None
    if exc.errno == errno.ENOTDIR:
        blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None and (blocker == store.root or blocker in store.root.parents):
            raise AccessDenied(f"cannot write under {store.root}: {blocker} is a file, not a directory.",
                               hint="Point the target at a directory (or a path that does not exist yet).") from None
        raise StoreError(f"cannot write {path}: a file stands where a directory should be.") from None
    if exc.errno == errno.ENOSPC:
        raise StoreError(f"cannot write {path}: the disk is full.") from None
