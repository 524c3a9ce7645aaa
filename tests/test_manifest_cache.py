"""The router's manifest cache is bounded in bytes (estimated memory), not only in count."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from atomicsite.layout import manifest_key
from atomicsite.manifest import FileEntry, Manifest
from atomicsite.serve.state import ManifestCache, manifest_weight
from atomicsite.stores.local import LocalStore

from .helpers import OpsStore


def stored_manifest(store, n: int, tag: str) -> Manifest:
    m = Manifest.build(FileEntry(f"{tag}/f-{i}.html", f"{i:064x}", i, f"{i:032x}", "text/html", "no-cache")
                       for i in range(n))
    store.put(manifest_key(m.version), m.to_json())
    return m


@pytest.fixture
def pool():
    with ThreadPoolExecutor(4) as executor:
        yield executor


def test_manifests_are_evicted_by_weight_least_recently_used_first(tmp_path, pool):
    store = OpsStore(LocalStore(tmp_path / "site"))
    a, b, c = (stored_manifest(store, 200, t) for t in "abc")
    w = manifest_weight(a)
    assert w > 200 * 400 and manifest_weight(b) == w == manifest_weight(c)
    cache = ManifestCache(store, pool, limit=100, recheck=60, max_bytes=2 * w + w // 2)  # two fit, not three

    async def run():
        for m in (a, b, a, c):  # a is used again after b, so b is the least recently used when c comes
            assert (await cache.get(m.version)).version == m.version

    asyncio.run(run())
    assert list(cache.shared.slots) == [a.version, c.version]
    assert cache.shared.weight == 2 * w
    gets = store.count("get")
    asyncio.run(cache.get(a.version))
    assert store.count("get") == gets  # still cached
    cache.forget(c.version)
    assert cache.shared.weight == w and list(cache.shared.slots) == [a.version]


def test_a_manifest_heavier_than_the_cap_is_still_cached_alone(tmp_path, pool):
    store = OpsStore(LocalStore(tmp_path / "site"))
    small, big = stored_manifest(store, 10, "s"), stored_manifest(store, 500, "b")
    cache = ManifestCache(store, pool, limit=100, recheck=60, max_bytes=manifest_weight(big) // 2)
    asyncio.run(cache.get(small.version))
    asyncio.run(cache.get(big.version))
    assert list(cache.shared.slots) == [big.version] and cache.shared.weight == manifest_weight(big)
    gets = store.count("get")
    asyncio.run(cache.get(big.version))  # not one store read per request
    assert store.count("get") == gets


def test_the_count_limit_still_applies_and_keeps_the_weight_right(tmp_path, pool):
    store = OpsStore(LocalStore(tmp_path / "site"))
    ms = [stored_manifest(store, 20, t) for t in "abcd"]
    cache = ManifestCache(store, pool, limit=2, recheck=60)
    for m in ms:
        asyncio.run(cache.get(m.version))
    assert list(cache.shared.slots) == [ms[2].version, ms[3].version]
    assert cache.shared.weight == manifest_weight(ms[2]) + manifest_weight(ms[3])
