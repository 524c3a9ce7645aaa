"""Which older manifests a tree-layout publish reads to copy from (publish._known_manifests): the
channel's current one, then older ones only while what is left to upload outweighs them."""

from __future__ import annotations

import atomicsite
from atomicsite.layout import TREE

from .helpers import SETTINGS, OpsStore, site


def _publish(build, store):
    return atomicsite.publish(build, store, settings=SETTINGS, source={}, layout=TREE)


def _manifest_reads(counted: OpsStore) -> int:
    return sum(1 for op, key in counted.calls if op == "get" and key.startswith("_atomicsite/manifests/"))


def test_a_small_change_reads_only_the_current_manifest(local_rig, tmp_path):
    build = site(tmp_path)
    for i in range(4):
        (build / "index.html").write_text(f"version {i}")
        _publish(build, local_rig.store)
    (build / "index.html").write_text("one more")
    counted = OpsStore(local_rig.store)
    result = _publish(build, counted)
    assert result.switched and result.plan.count("upload") == 1
    # the new version's own manifest (not there: nothing committed), then the current one only
    assert _manifest_reads(counted) == 2
    assert atomicsite.verify(None, local_rig.store, settings=SETTINGS).ok


def test_a_revert_of_a_large_change_still_copies_from_the_previous_version(local_rig, tmp_path):
    build = site(tmp_path)
    big = build / "big.bin"
    big.write_bytes(b"a" * 200_000)  # far more than a manifest of this site weighs
    v1 = _publish(build, local_rig.store).version
    big.write_bytes(b"b" * 200_000)
    _publish(build, local_rig.store)
    big.write_bytes(b"a" * 200_000)  # back to v1's content, which the current version lacks
    (build / "index.html").write_text("and a new page")
    counted = OpsStore(local_rig.store)
    result = _publish(build, counted)
    copied = {a.entry.path: a.source_key for a in result.plan.actions if a.kind == "copy"}
    assert copied["big.bin"] == f"v/{v1}/big.bin"
    assert result.plan.count("upload") == 1  # only index.html
    assert _manifest_reads(counted) == 3  # its own (absent), the current one, and v1's
