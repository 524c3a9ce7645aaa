"""Opening a target for a command, and reading what is stored there (manifests, versions)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .channels import PointerState
from .config import Settings, load_settings
from .channels import read_pointer
from .errors import ChannelNotFound, IntegrityError, ObjectNotFound, TargetNotFound, UsageError, VersionNotFound
from .layout import DEFAULT_CHANNEL, MANIFESTS, VERSION_RE, manifest_key, version_of_manifest_key, version_prefix
from .manifest import Manifest
from .retry import RetryingStore, RetryPolicy
from .stores import open_store
from .stores.base import ObjectInfo, Store


@contextlib.contextmanager
def opened(target: str | Store | None, settings: Settings | None, *,
           must_exist: bool = False) -> Iterator[tuple[Store, Settings]]:
    """Yield a retrying store for ``target`` (a URL, a Store, or None for the configured default).

    ``must_exist``: a read command; a target holding nothing at all is an error (:func:`require_site`),
    not an empty answer, because it is almost always a typo or the wrong directory.
    """
    settings = settings or load_settings()
    if target is None or isinstance(target, str):
        inner = open_store(target or settings.target_or_default, settings.store)
        own = True
    else:
        inner, own = target, False
    try:
        store = RetryingStore(inner, RetryPolicy(attempts=settings.retries))
        if must_exist:
            require_site(store, settings)
        yield store, settings
    finally:
        if own:
            inner.close()


def require_site(store: Store, settings: Settings | None = None) -> None:
    """Raise :class:`TargetNotFound` when not one object is stored under the target's root."""
    if next(iter(store.list("")), None) is not None:
        return
    root = getattr(getattr(store, "inner", store), "root", None)
    why = f"{root} does not exist" if isinstance(root, Path) and not root.exists() else "it holds nothing"
    where = (f" (from {settings.config_file})" if settings and settings.config_file and settings.target else "")
    raise TargetNotFound(f"nothing has been published to {store.url}{where}: {why}.",
                         hint="Check --target, ATOMICSITE_TARGET or the config file's target, or publish first.")


def read_manifest(store: Store, version: str) -> Manifest:
    key = manifest_key(version)
    body = store.get(key)  # ObjectNotFound propagates: callers decide what "missing" means
    return Manifest.from_json(body.data, where=f"{store.url}/{key}", expect_version=version)


def find_manifest(store: Store, version: str) -> Manifest | None:
    try:
        return read_manifest(store, version)
    except ObjectNotFound:
        return None


class ManifestMemo:
    """``find_manifest`` for one command, reading each version at most once: a publish needs the
    served version's manifest to plan and again for the commit-order guard (771 KB for 10,000 files);
    a prune reads a kept version's while planning and again under its lease. A committed version's
    file table never changes (its id is their hash), so a manifest read once still holds."""

    def __init__(self, store: Store):
        self.store = store
        self._found: dict[str, Manifest | None] = {}

    def find(self, version: str) -> Manifest | None:
        if version not in self._found:
            self._found[version] = find_manifest(self.store, version)  # IntegrityError propagates, uncached
        return self._found[version]

    def get(self, version: str) -> Manifest | None:
        """:meth:`find`, with a manifest that does not validate read as None (and not read again):
        for prune, which only needs what valid manifests reference."""
        try:
            return self.find(version)
        except IntegrityError:
            self._found[version] = None
            return None

    def cached(self, version: str) -> Manifest | None:
        """The manifest if this command already read it; never reads."""
        return self._found.get(version)

    def fresh(self, version: str) -> Manifest | None:
        """The manifest as the store has it now (what a proof needs: that it is still there after a
        claim). One already read is only looked up again (``head``): a version's manifest cannot
        change, its id being the hash of its file table; one deleted meanwhile is forgotten."""
        if self._found.get(version) is not None:
            try:
                self.store.head(manifest_key(version))
                return self._found[version]
            except ObjectNotFound:
                self._found[version] = None
                return None
        self._found.pop(version, None)
        return self.find(version)


def list_manifest_infos(store: Store) -> list[tuple[str, ObjectInfo]]:
    """(version, object info) for every committed version, newest first by store time."""
    found = [(v, info) for info in store.list(MANIFESTS) if (v := version_of_manifest_key(info.key))]
    epoch = 0.0
    found.sort(key=lambda vi: (vi[1].modified.timestamp() if vi[1].modified else epoch, vi[0]), reverse=True)
    return found


def resolve_version(store: Store, name: str, pointer: PointerState | None = None) -> str:
    """A version name → a committed version id. Names (docs/cli.md, "Version names"):

    - a full id, or a unique prefix of 4+ hex characters (like git);
    - ``current``: the version the acting channel (``pointer``) serves;
    - ``previous``: the version the acting channel served before that;
    - ``live``: the version the ``live`` channel (production) serves, whatever the acting channel, so
      ``promote live --channel staging`` copies production to staging.
    """
    name = (name or "").strip()
    if pointer is not None and name == "live" and pointer.channel != DEFAULT_CHANNEL:
        pointer = read_pointer(store, DEFAULT_CHANNEL)
    if pointer is not None and name in ("previous", "live", "current"):
        p = pointer.pointer
        if p is None:
            raise ChannelNotFound(f"channel {pointer.channel!r} has nothing published yet, so {name!r} means nothing.",
                                  hint="Publish first.")
        if name == "previous":
            if not p.previous:
                raise VersionNotFound(f"channel {pointer.channel!r} has no previous version.",
                                      hint="See 'atomicsite history'.")
            return p.previous
        return p.version
    if not name or not all(c in "0123456789abcdef" for c in name.lower()):
        raise UsageError(f"{name!r} is not a version id", hint="Use an id or a prefix of one from 'atomicsite versions', or current, previous or live.")
    name = name.lower()
    if len(name) < 4:
        raise UsageError(f"version prefix {name!r} is too short", hint="Give at least 4 characters.")
    matches = [v for v, _ in list_manifest_infos(store) if v.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(
            f"{name!r} is ambiguous: it matches {len(matches)} versions ({', '.join(sorted(matches)[:5])}).",
            hint="Give more characters of the id.",
        )
    if VERSION_RE.match(name) and any(True for _ in store.list(version_prefix(name))):
        raise IntegrityError(
            f"version {name} is incomplete: its files are stored but it was never committed (no manifest).",
            hint="Re-run 'atomicsite publish' with its build dir to finish it.",
        )
    raise VersionNotFound(f"no version matches {name!r} in {store.url}.", hint="See 'atomicsite versions'.")


ANCESTORS_RECORDED = 20
"""How many ancestors of the build's commit a manifest records (when the checkout has them), so the
older-commit guard can tell ancestry later even where the deploying checkout is shallow."""


def detect_source(cwd: str | None = None) -> dict:
    """Provenance for the manifest: commit, its committer time, recent ancestors, ref and CI run URL.

    In GitHub Actions the commit is ``GITHUB_SHA`` and the rest comes from the checkout when there is
    one (``git log -1 --format=%cI``; a ``fetch-depth: 1`` checkout has the commit but no ancestors).
    Elsewhere everything comes from the git checkout at ``cwd``. Nothing at all outside a checkout.
    """
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() or None if out.returncode == 0 else None

    env = os.environ
    if env.get("GITHUB_SHA"):
        src = {"commit": env["GITHUB_SHA"], "ref": env.get("GITHUB_REF")}
        if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
            server = env.get("GITHUB_SERVER_URL", "https://github.com")
            src["run_url"] = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        if env.get("GITHUB_REPOSITORY"):
            src["repository"] = env["GITHUB_REPOSITORY"]
        src.update(_commit_facts(git, env["GITHUB_SHA"]))
        return {k: v for k, v in src.items() if v}

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    src = {"commit": commit, "ref": git("rev-parse", "--abbrev-ref", "HEAD"), **_commit_facts(git, commit)}
    if git("status", "--porcelain", "--untracked-files=no"):
        src["dirty"] = True
    return {k: v for k, v in src.items() if v}


def _commit_facts(git, commit: str) -> dict:
    """Committer time and recent ancestors of ``commit``, as far as the local checkout knows them."""
    when = git("log", "-1", "--format=%cI", commit, "--")
    if not when:
        return {}  # not in this checkout (a CI step without actions/checkout): the commit id alone
    facts: dict = {"committed_at": when}
    ancestors = (git("rev-list", f"--max-count={ANCESTORS_RECORDED + 1}", commit, "--") or "").split()[1:]
    if ancestors:
        facts["ancestors"] = ancestors
    if git("rev-parse", "--is-shallow-repository") == "true":
        facts["shallow"] = True
    return facts
