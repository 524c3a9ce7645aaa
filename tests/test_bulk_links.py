"""The local store builds a version's tree with one bulk hard-link call (atomicsite.bulk_links):
a failure midway leaves the live site as it was, a re-run resumes, a vanished source is uploaded,
and every linked file is still proven by its inode."""

from __future__ import annotations

import os

import pytest

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.layout import OBJECTS, TREE

from .helpers import SETTINGS, Crash, OpsStore, site

LAYOUTS = [TREE, OBJECTS]


def _publish(build, store, layout):
    return atomicsite.publish(build, store, settings=SETTINGS, source={}, layout=layout)


def _grown(tmp_path):
    build = site(tmp_path)
    for i in range(30):
        (build / f"page-{i}.html").write_text(f"<p>page {i}</p>")
    return build


def _live(store):
    return read_pointer(store, "live").version, store.live_link_target()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_crash_midway_through_the_bulk_link_leaves_live_alone_and_a_rerun_resumes(local_rig, tmp_path, layout):
    store = local_rig.store
    build = _grown(tmp_path)
    _publish(build, store, layout)
    before = _live(store)
    (build / "index.html").write_text("<p>next</p>")
    links = {"n": 0}

    def crash_at_the_tenth_link(op, args):
        if op == "copy":
            links["n"] += 1
            if links["n"] == 10:
                raise Crash("power cut")

    with pytest.raises(Crash):
        _publish(build, OpsStore(store, before=crash_at_the_tenth_link), layout)
    assert links["n"] == 10, "the links go through the bulk call, one counted copy each"
    assert _live(store) == before
    version = atomicsite.publish(build, store, settings=SETTINGS, source={}, layout=layout, dry_run=True).version
    in_tree = len(list(store.list(f"v/{version}/")))
    assert in_tree >= 9  # the nine links made before the crash (and, in the tree layout, the upload)
    result = _publish(build, store, layout)
    assert result.switched and _live(store) == (result.version, f"v/{result.version}")
    # what landed before the crash is found and kept, not made again
    if layout == TREE:
        assert result.plan.count("skip") == in_tree
    else:
        assert len(result.plan.links) == len(result.plan.actions) - in_tree
    assert atomicsite.verify(None, store, settings=SETTINGS).ok


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_link_source_that_vanished_is_uploaded_from_the_build(local_rig, tmp_path, layout):
    store = local_rig.store
    build = _grown(tmp_path)
    _publish(build, store, layout)
    (build / "index.html").write_text("<p>next</p>")
    gone = []

    def remove_the_source_first(op, args):
        if op == "copy" and not gone:
            os.unlink(store.path_of(args[0]))  # as if pruned between the plan and the link
            gone.append(args[1])

    result = _publish(build, OpsStore(store, before=remove_the_source_first), layout)
    assert result.switched and gone
    key = gone[0]
    path = key.split("/", 2)[2]
    assert store.path_of(key).read_bytes() == (build / path).read_bytes()
    assert atomicsite.verify(None, store, settings=SETTINGS).ok


def test_a_wrong_file_already_in_the_new_tree_is_replaced(local_rig, tmp_path):
    store = local_rig.store
    build = _grown(tmp_path)
    _publish(build, store, TREE)
    (build / "index.html").write_text("<p>next</p>")
    version = atomicsite.publish(build, store, settings=SETTINGS, source={}, layout=TREE, dry_run=True).version
    wrong = store.path_of(f"v/{version}/page-3.html")
    wrong.parent.mkdir(parents=True, exist_ok=True)
    wrong.write_text("not what the build has")  # a damaged partial upload of this very version
    result = _publish(build, store, TREE)
    assert result.switched
    assert wrong.read_bytes() == (build / "page-3.html").read_bytes()
    assert atomicsite.verify(None, store, settings=SETTINGS).ok


def test_a_linked_file_changed_in_place_is_not_trusted(local_rig, tmp_path):
    """The bulk link proves by the inode's recorded hash, stamped with mtime and size: a source edited
    in place no longer matches its stamp, so it is hashed, found wrong, and the build's file uploaded."""
    store = local_rig.store
    build = _grown(tmp_path)
    v1 = _publish(build, store, TREE).version
    edited = store.path_of(f"v/{v1}/page-5.html")
    edited.write_text("<p>edited on the server</p>")  # same inode, new bytes and mtime
    (build / "index.html").write_text("<p>next</p>")
    result = _publish(build, store, TREE)
    assert result.switched
    assert store.path_of(f"v/{result.version}/page-5.html").read_bytes() == (build / "page-5.html").read_bytes()
    assert atomicsite.verify(None, store, settings=SETTINGS).ok


def test_bad_keys_are_refused_before_any_link(local_rig):
    from atomicsite.errors import UsageError

    with pytest.raises(UsageError):
        list(local_rig.store.link_many([("v/a/../../etc/passwd", "v/b/x")]))
    with pytest.raises(UsageError):
        list(local_rig.store.link_many([("v/a/x", "v//x")]))


def test_a_failing_link_stops_the_bulk_call_with_a_one_line_error(local_rig):
    from atomicsite.errors import AtomicsiteError

    store = local_rig.store
    for i in range(50):
        store.put(f"v/old/f{i}", f"content {i}".encode())
    store.put("v/new/blocker", b"a file where a directory must go")
    pairs = [(f"v/old/f{i}", f"v/new/f{i}") for i in range(20)] + [("v/old/f20", "v/new/blocker/f20")] + \
            [(f"v/old/f{i}", f"v/new/f{i}") for i in range(21, 50)]
    with pytest.raises(AtomicsiteError) as failed:
        for _ in store.link_many(pairs):
            pass
    assert "blocker" in str(failed.value) and "\n" not in str(failed.value)
    # and the call that succeeds returns one proven receipt per link
    got = dict(store.link_many([(f"v/old/f{i}", f"v/again/f{i}") for i in range(50)]))
    assert len(got) == 50 and all(info.sha256 and info.size for info in got.values())


def test_uploads_to_the_local_store_use_at_most_its_transfer_workers(local_rig, tmp_path, monkeypatch):
    """concurrency = 32 is for buckets; on the local store more threads than cores only take turns."""
    from atomicsite import transfer
    from atomicsite.stores.local import LocalStore
    from atomicsite.stores.memory import MemoryStore

    pools = []
    real = transfer.ThreadPoolExecutor
    monkeypatch.setattr(transfer, "ThreadPoolExecutor",
                        lambda max_workers, **kw: pools.append(max_workers) or real(max_workers, **kw))
    monkeypatch.setattr(LocalStore, "transfer_workers", 2)
    build = site(tmp_path)
    for i in range(20):
        (build / f"page-{i}.html").write_text(f"<p>page {i}</p>")
    atomicsite.publish(build, local_rig.store, settings=SETTINGS, source={})
    assert pools == [2]  # SETTINGS.concurrency is 8
    pools.clear()
    atomicsite.publish(build, MemoryStore(), settings=SETTINGS, source={})  # a store without a limit
    assert pools == [SETTINGS.concurrency]
