"""Where things live under a target's root (the storage layout contract, docs/layout.md)."""

from __future__ import annotations

import re

from .errors import UsageError
from .stores.base import trait

VERSIONS = "v/"
MANIFESTS = "_atomicsite/manifests/"
SUMMARIES = "_atomicsite/summaries/"  # a few hundred bytes per version, for listings (atomicsite.summaries)
CHANNELS = "_atomicsite/channels/"
PROBES = "_atomicsite/probe/"  # S3 conditional-write probes (atomicsite.stores.s3)
POOL = "_atomicsite/objects/"  # the objects layout: each distinct content once, named by its sha256
DEFAULT_CHANNEL = "live"

TREE = "tree"  # every version a full tree under v/<version>/
OBJECTS = "objects"  # a version is its manifest; contents live once each in the pool
LAYOUTS = (TREE, OBJECTS)

_CHANNEL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
VERSION_RE = re.compile(r"^[0-9a-f]{16,64}$")


def version_prefix(version: str) -> str:
    return f"{VERSIONS}{version}/"


def object_key(version: str, path: str) -> str:
    return f"{VERSIONS}{version}/{path}"


def pool_key(sha256: str) -> str:
    return f"{POOL}{sha256}"


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha_of_pool_key(key: str) -> str | None:
    if key.startswith(POOL):
        sha = key[len(POOL):]
        return sha if _SHA256_HEX.fullmatch(sha) else None  # one regex, not a generator per character
    return None


def has_link_trees(store) -> bool:
    """The local store keeps a hard-linked tree under ``v/<version>/`` for objects-layout versions too,
    so plain web servers can serve ``current``; readers use it there."""
    return bool(trait(store, "link_trees", False))


def content_key(version: str, layout: str, path: str, sha256: str, *, link_trees: bool) -> str:
    """Where the bytes of one file of a version are read from (``link_trees``: see has_link_trees)."""
    if layout == OBJECTS and not link_trees:
        return pool_key(sha256)
    return object_key(version, path)


def manifest_key(version: str) -> str:
    return f"{MANIFESTS}{version}.json"


def summary_key(version: str) -> str:
    return f"{SUMMARIES}{version}.json"


def channel_key(channel: str) -> str:
    return f"{CHANNELS}{channel}.json"


def check_channel(name: str) -> str:
    if not _CHANNEL_RE.match(name or ""):
        raise UsageError(
            f"invalid channel name {name!r}",
            hint="Use 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. 'live', 'pr-12').",
        )
    return name


def version_of_manifest_key(key: str) -> str | None:
    if key.startswith(MANIFESTS) and key.endswith(".json"):
        v = key[len(MANIFESTS):-len(".json")]
        return v if VERSION_RE.match(v) else None
    return None


def channel_of_key(key: str) -> str | None:
    if key.startswith(CHANNELS) and key.endswith(".json"):
        return key[len(CHANNELS):-len(".json")]
    return None
