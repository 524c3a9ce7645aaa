"""Per-version summaries (atomicsite.summaries): listings read them instead of manifests; the manifest
stays the commit point; versions from before summaries still list (and get one); prune cleans them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import atomicsite
from atomicsite.errors import AccessDenied, ObjectNotFound
from atomicsite.layout import SUMMARIES, manifest_key, summary_key
from atomicsite.manifest import Manifest, canonical_json
from atomicsite.publish import _commit
from atomicsite.summaries import Summary, orphaned, read_summary

from .helpers import SETTINGS, Crash, OpsStore, publish, publish_versions, site


def manifest_gets(ops: OpsStore) -> list[str]:
    return [k for op, k in ops.calls if op == "get" and k.startswith("_atomicsite/manifests/")]


def test_publish_writes_a_summary_before_the_manifest(rig, tmp_path):
    ops = OpsStore(rig.store)
    v = publish(site(tmp_path), ops, message="first").version
    puts = [k for op, k in ops.calls if op == "put"]
    assert puts.index(summary_key(v)) < puts.index(manifest_key(v))
    m = Manifest.from_json(rig.store.get(manifest_key(v)).data, where="t")
    s = read_summary(rig.store, v)
    assert s == Summary.of(m) and s.message == "first" and s.files == len(m.files) and s.bytes == m.total_bytes
    assert s.extra["tool"] == m.tool  # other top-level manifest fields are carried


def test_versions_and_status_read_no_manifest(rig, tmp_path):
    vs = publish_versions(site(tmp_path), rig.store, 3)
    ops = OpsStore(rig.store)
    rows = atomicsite.versions(ops, settings=SETTINGS)
    assert [r.version for r in rows] == vs[::-1] and rows[0].channels == ["live"]
    assert rows[0].files == read_summary(rig.store, vs[-1]).files > 0
    st = atomicsite.status(ops, settings=SETTINGS)
    assert st.manifest["version"] == vs[-1] and st.manifest["files"] == rows[0].files
    assert manifest_gets(ops) == []
    assert atomicsite.history(ops, settings=SETTINGS) and manifest_gets(ops) == []


def test_versions_committed_without_a_summary_list_from_the_manifest_and_get_one(rig, tmp_path):
    vs = publish_versions(site(tmp_path), rig.store, 2)
    rig.store.delete_many([summary_key(vs[0])])  # as a version committed by an older atomicsite
    rig.store.put(summary_key(vs[1]), b'{"format": 1, "version": "nope"}')  # unreadable: same fallback
    ops = OpsStore(rig.store)
    rows = atomicsite.versions(ops, settings=SETTINGS)
    assert {r.version for r in rows} == set(vs) and all(r.files > 0 and r.created != "?" for r in rows)
    assert sorted(manifest_gets(ops)) == sorted(manifest_key(v) for v in vs)
    for v in vs:  # backfilled, so the next listing reads summaries only
        assert read_summary(rig.store, v) == Summary.of(Manifest.from_json(rig.store.get(manifest_key(v)).data, where="t"))
    again = OpsStore(rig.store)
    atomicsite.versions(again, settings=SETTINGS)
    assert manifest_gets(again) == []


def test_listing_works_when_the_summary_cannot_be_written(rig, tmp_path):
    vs = publish_versions(site(tmp_path), rig.store, 2)
    rig.store.delete_many([summary_key(v) for v in vs])

    def deny_writes(op, args):
        if op == "put":
            raise AccessDenied("read-only credentials")

    rows = atomicsite.versions(OpsStore(rig.store, before=deny_writes), settings=SETTINGS)
    assert {r.version for r in rows} == set(vs) and all(r.files > 0 for r in rows)
    st = atomicsite.status(OpsStore(rig.store, before=deny_writes), settings=SETTINGS)
    assert st.manifest["version"] == vs[-1]


def test_a_summary_without_a_manifest_is_not_a_version(rig, tmp_path):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    (build / "index.html").write_text("second")
    # The process dies right after writing the summary, as it starts writing the manifest.

    def die_at_the_manifest(op, args):
        if op == "put" and args[0].startswith("_atomicsite/manifests/"):
            raise Crash(args[0])

    with pytest.raises(Crash) as crash:
        publish(build, OpsStore(rig.store, before=die_at_the_manifest), promote=False)
    v2 = str(crash.value).split("/")[-1].removesuffix(".json")
    assert read_summary(rig.store, v2) is not None
    with pytest.raises(ObjectNotFound):
        rig.store.head(manifest_key(v2))
    assert [r.version for r in atomicsite.versions(rig.store, settings=SETTINGS)] == [v1]
    # prune leaves it alone inside the grace period, and cleans it (with the partial upload) after
    kept = atomicsite.prune(rig.store, settings=SETTINGS, grace=3600)
    assert read_summary(rig.store, v2) is not None and not kept.plan.stale_summaries
    atomicsite.prune(rig.store, settings=SETTINGS, grace=0)
    assert read_summary(rig.store, v2) is None
    assert [r.version for r in atomicsite.versions(rig.store, settings=SETTINGS)] == [v1]


def test_prune_deletes_summaries_with_their_versions(rig, tmp_path):
    vs = publish_versions(site(tmp_path), rig.store, 4)
    result = atomicsite.prune(rig.store, keep=2, settings=SETTINGS)
    gone = set(result.deleted_versions)
    assert gone == set(vs[:2])  # the newest two (live and its previous) are kept
    left = {i.key for i in rig.store.list(SUMMARIES)}
    assert left == {summary_key(v) for v in vs if v not in gone}


def test_a_losing_concurrent_commit_leaves_the_winners_summary(rig, tmp_path):
    v = publish(site(tmp_path), rig.store, message="winner", promote=False).version
    winner = Manifest.from_json(rig.store.get(manifest_key(v)).data, where="t")
    loser = Manifest(v, "2000-01-01T00:00:00.000Z", winner.files, message="loser")
    _commit(rig.store, loser, None)  # its summary goes up, its create-only manifest put loses
    assert Manifest.from_json(rig.store.get(manifest_key(v)).data, where="t").message == "winner"
    assert read_summary(rig.store, v).message == "winner"


def test_summary_validation():
    good = {"format": 1, "version": "0123456789abcdef", "created": "2026-01-01T00:00:00Z", "files": 2,
            "bytes": 10, "source": {}, "message": None, "layout": "objects"}
    s = Summary.from_json(canonical_json(good), expect_version="0123456789abcdef")
    assert s.extra == {"layout": "objects"} and json.loads(s.to_json()) == good
    for change in ({"format": 2}, {"version": "fedcba9876543210"}, {"files": -1}, {"bytes": True},
                   {"created": None}, {"source": []}, {"message": 3}):
        with pytest.raises(ValueError):
            Summary.from_json(canonical_json({**good, **change}), expect_version="0123456789abcdef")
    with pytest.raises(ValueError):
        Summary.from_json(b"\x00", expect_version="0123456789abcdef")


def test_orphaned_spares_committed_claimed_and_young(local_rig):
    store = local_rig.store
    for v in ("a" * 16, "b" * 16, "c" * 16):
        store.put(summary_key(v), b"{}")
    store.put(SUMMARIES + "not-a-version.json", b"{}")
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert orphaned(store, {"a" * 16}, {"b" * 16}, later, 3600) == [summary_key("c" * 16)]
    assert orphaned(store, set(), set(), datetime.now(timezone.utc), 3600) == []


def test_a_target_written_by_0_1_keeps_its_ids_and_lists(rig, tmp_path):
    build = site(tmp_path)
    v = publish(build, rig.store, message="old").version
    m = Manifest.from_json(rig.store.get(manifest_key(v)).data, where="t")
    old_bytes = canonical_json(m.to_dict())  # format 1, byte for byte what 0.1 stored
    rig.store.put(manifest_key(v), old_bytes)
    rig.store.delete_many([summary_key(v)])
    again = publish(build, rig.store)  # the same build, published by this code
    assert again.version == v and again.plan.committed and not again.plan.count("upload")
    assert rig.store.get(manifest_key(v)).data == old_bytes  # left as it was
    [row] = atomicsite.versions(rig.store, settings=SETTINGS)
    assert row.version == v and row.message == "old" and row.files == len(m.files)
    assert read_summary(rig.store, v).message == "old"  # backfilled
