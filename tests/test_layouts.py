"""Which layout a publish uses, and the local store's link trees proven by the inode."""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest

import atomicsite
from atomicsite.config import Settings
from atomicsite.errors import IntegrityError
from atomicsite.layout import OBJECTS, POOL, TREE, pool_key
from atomicsite.stores.local import LocalStore

from .helpers import SETTINGS, Crash, OpsStore, publish, site

publish_module = importlib.import_module("atomicsite.publish")


def test_a_new_target_gets_objects_on_the_local_store_and_tree_on_a_bucket(local_rig, s3_rig, tmp_path):
    build = site(tmp_path)
    assert publish(build, local_rig.store).plan.manifest.layout == OBJECTS
    assert publish(build, s3_rig.store).plan.manifest.layout == TREE


def test_a_channel_keeps_the_layout_of_the_version_it_serves(local_rig, tmp_path):
    build = site(tmp_path)
    atomicsite.publish(build, local_rig.store, settings=SETTINGS, source={}, layout=TREE)
    (build / "index.html").write_text("next")
    assert publish(build, local_rig.store).plan.manifest.layout == TREE  # not the local store's default
    (build / "index.html").write_text("and objects now")
    third = atomicsite.publish(build, local_rig.store, settings=SETTINGS, source={}, layout=OBJECTS)
    assert third.plan.manifest.layout == OBJECTS and atomicsite.verify(None, local_rig.store, settings=SETTINGS).ok
    # both layouts on one target, each version verifiable and promotable
    versions = [row.version for row in atomicsite.versions(local_rig.store, settings=SETTINGS)]
    for v in versions:
        assert atomicsite.verify(v, local_rig.store, settings=SETTINGS).ok
    assert atomicsite.rollback(local_rig.store, settings=SETTINGS).switched


def test_cloudfront_switching_means_the_tree_layout(local_rig):
    state = atomicsite.channels.read_pointer(local_rig.store, "live")
    assert publish_module._default_layout(local_rig.store, state, Settings(cloudfront=object()), lambda v: None) == TREE


def test_a_linked_tree_is_proven_by_the_inode_not_by_reading_it_again(tmp_path, monkeypatch):
    """A second process (a fresh store object) publishing one changed file hashes only what it writes."""
    from atomicsite.stores import local

    build = site(tmp_path)
    for i in range(40):
        (build / f"page-{i}.html").write_text(f"page {i}")
    publish(build, LocalStore(tmp_path / "site"))
    (build / "index.html").write_text("changed")
    hashed = []
    real = local._sha256_file
    monkeypatch.setattr(local, "_sha256_file", lambda path: hashed.append(path) or real(path))
    result = publish(build, LocalStore(tmp_path / "site"))
    assert result.switched and result.plan.count("upload") == 1
    assert hashed == [], f"re-read {len(hashed)} stored files instead of trusting their inodes"
    assert atomicsite.verify(None, LocalStore(tmp_path / "site"), settings=SETTINGS).ok
    assert len(list(LocalStore(tmp_path / "site").list(POOL))) == 40 + 11  # each content once


def test_prune_says_what_it_collects_from_the_pool(local_rig, tmp_path):
    from typer.testing import CliRunner

    from atomicsite.cli import app

    build = site(tmp_path)
    for i in range(4):
        (build / "index.html").write_text(f"version {i}")
        publish(build, local_rig.store)
    args = ["prune", "--target", local_rig.url, "--keep", "1", "--grace", "0"]
    dry = CliRunner().invoke(app, args + ["--dry-run"])
    assert dry.exit_code == 0 and "would collect 2 unused pool objects" in dry.output  # the two old index.html
    real = CliRunner().invoke(app, args)
    assert real.exit_code == 0 and "of which 2 unused pool objects" in real.output
    assert len(list(local_rig.store.list(POOL))) == 9 + 2  # shared files, and the two kept versions' index.html


def test_a_small_change_looks_up_only_its_new_contents(rig, tmp_path):
    """The objects the served version references are in the pool by the GC protocol; only the
    build's other contents are looked up (a head each), and the pool is not listed."""
    build = site(tmp_path)
    for i in range(30):
        (build / f"page-{i}.html").write_text(f"page {i}")
    first = atomicsite.publish(build, rig.store, settings=SETTINGS, source={}, layout=OBJECTS)
    (build / "index.html").write_text("changed")
    (build / "page-3.html").write_text("changed too")
    ops = OpsStore(rig.store)
    result = atomicsite.publish(build, ops, settings=SETTINGS, source={}, layout=OBJECTS)
    assert result.switched and result.plan.count("upload") == 2
    assert [key for op, key in ops.calls if op == "list" and key.startswith(POOL)] == []
    heads = sorted(key for op, key in ops.calls if op == "head" and key.startswith(POOL))
    new = {pool_key(e.sha256) for e in result.plan.manifest.files} - {pool_key(e.sha256) for e in first.plan.manifest.files}
    assert heads == sorted(new)
    # the served version's manifest is read once: planning and the commit-order guard share it
    base = f"_atomicsite/manifests/{first.version}.json"
    assert [key for op, key in ops.calls if op == "get" and key == base] == [base]
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_with_compress_the_served_manifest_is_read_once_and_looked_up_again_under_the_claim(local_rig, tmp_path):
    """compress reads the served manifest before the claim; the pool proof needs it to be there
    after the claim, which a head shows (a version's manifest never changes)."""
    from atomicsite.compress import CompressSettings

    settings = replace(SETTINGS, compress=CompressSettings(encodings=("gzip",)))
    build = site(tmp_path)
    first = atomicsite.publish(build, local_rig.store, settings=settings, source={}, layout=OBJECTS)
    (build / "index.html").write_text("<p>changed</p>" * 200)
    ops = OpsStore(local_rig.store)
    atomicsite.publish(build, ops, settings=settings, source={}, layout=OBJECTS)
    base = f"_atomicsite/manifests/{first.version}.json"
    assert [op for op, key in ops.calls if key == base] == ["get", "head"]


def test_a_rerun_of_a_small_change_finds_what_the_crashed_run_uploaded(rig, tmp_path):
    build = site(tmp_path)
    for i in range(30):
        (build / f"page-{i}.html").write_text(f"page {i}")
    atomicsite.publish(build, rig.store, settings=SETTINGS, source={}, layout=OBJECTS)
    (build / "page-1.html").write_text("one")
    (build / "page-2.html").write_text("two")
    puts = []

    def crash_at_second_upload(op, args):
        if op == "put" and str(args[0]).startswith(POOL):
            puts.append(args[0])
            if len(puts) == 2:
                raise Crash("power cut")

    settings = replace(SETTINGS, concurrency=1)
    with pytest.raises(Crash):
        atomicsite.publish(build, OpsStore(rig.store, before=crash_at_second_upload), settings=settings, source={},
                           layout=OBJECTS)
    redo = OpsStore(rig.store)
    result = atomicsite.publish(build, redo, settings=settings, source={}, layout=OBJECTS)
    uploaded = [key for op, key in redo.calls if op == "put" and key.startswith(POOL)]
    assert uploaded == [puts[1]], "the content stored before the crash must be found, not uploaded again"
    assert result.switched and atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_a_large_change_lists_the_pool_once(rig, tmp_path):
    build = site(tmp_path)
    atomicsite.publish(build, rig.store, settings=SETTINGS, source={}, layout=OBJECTS)
    for i in range(5):  # more than twice the one page a listing of this pool takes
        (build / f"new-{i}.txt").write_text(f"new {i}")
    ops = OpsStore(rig.store)
    result = atomicsite.publish(build, ops, settings=SETTINGS, source={}, layout=OBJECTS)
    assert result.plan.count("upload") == 5
    assert [key for op, key in ops.calls if op == "list" and key.startswith(POOL)] == [POOL]
    assert not [key for op, key in ops.calls if op == "head" and key.startswith(POOL)]


@pytest.mark.parametrize("layout", [TREE, OBJECTS], indirect=True)
def test_prune_decides_from_summaries_and_reads_only_kept_manifests(rig, tmp_path, layout):
    """A deleted version's manifest is never downloaded; a tree-only target downloads none at all."""
    from .helpers import publish_versions

    build = site(tmp_path)
    versions = publish_versions(build, rig.store, 5)
    ops = OpsStore(rig.store)
    result = atomicsite.prune(ops, keep=1, grace=0, settings=SETTINGS)
    assert sorted(result.deleted_versions) == sorted(versions[:3])
    read = {key for op, key in ops.calls if op == "get" and key.startswith("_atomicsite/manifests/")}
    kept = {f"_atomicsite/manifests/{v}.json" for v in versions[3:]}  # live, and its previous
    assert read == (kept if layout == OBJECTS else set())
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok
    assert atomicsite.rollback(rig.store, settings=SETTINGS).version == versions[3]


@pytest.mark.parametrize("layout", [TREE, OBJECTS], indirect=True)
def test_publish_repair_stores_again_what_was_deleted_behind_the_tools_back(rig, tmp_path, layout):
    from atomicsite.layout import object_key
    from atomicsite.targets import read_manifest

    build = site(tmp_path)
    for i in range(10):
        (build / f"page-{i}.html").write_text(f"page {i}")
    v1 = publish(build, rig.store).version
    entry = read_manifest(rig.store, v1).by_path["page-3.html"]
    gone = [object_key(v1, entry.path)] if layout == TREE else [pool_key(entry.sha256)]
    if layout == OBJECTS and isinstance(rig.store, LocalStore):
        gone.append(object_key(v1, entry.path))  # the local store's link tree shares the inode
    for key in gone:
        rig.store.delete(key)
    with pytest.raises(IntegrityError, match="1 missing .* with --repair"):
        atomicsite.verify(v1, rig.store, settings=SETTINGS)
    assert publish(build, rig.store).plan.committed  # the same build again: already committed, nothing done
    ops = OpsStore(rig.store)
    fixed = atomicsite.publish(build, ops, settings=SETTINGS, source={}, repair=True)
    assert not fixed.plan.committed and fixed.plan.count("upload") == 1
    listed = [key for op, key in ops.calls if op == "list"]
    assert len(listed) == len(set(listed)), listed  # planned once: each prefix listed once
    assert fixed.version == v1 and atomicsite.verify(None, rig.store, settings=SETTINGS).ok
    assert atomicsite.status(rig.store, settings=SETTINGS).manifest["version"] == v1


def test_the_inode_record_is_small_enough_to_live_in_the_inode_and_the_old_text_form_still_counts(tmp_path):
    """48 bytes (digest, mtime, size) fit inside an ext4 inode; the ~95-byte text form earlier
    releases wrote took a 4 KB block per file. Both prove the inode; a stale stamp proves nothing."""
    import hashlib
    import os

    from atomicsite.stores import local

    store = LocalStore(tmp_path / "site")
    info = store.put("v/a/x.txt", b"hello")
    path = store.path_of("v/a/x.txt")
    sha = hashlib.sha256(b"hello").hexdigest()
    try:
        raw = os.getxattr(path, local._SHA_XATTR)
    except OSError:
        import pytest

        pytest.skip("no user xattrs on this file system")
    assert len(raw) == 48 and info.sha256 == sha
    st = path.stat()
    assert local._recorded_sha256(path, st) == sha
    os.setxattr(path, local._SHA_XATTR, f"{sha} {st.st_mtime_ns} {st.st_size}".encode())  # the old form
    assert local._recorded_sha256(path, st) == sha
    os.setxattr(path, local._SHA_XATTR, f"{sha} {st.st_mtime_ns + 1} {st.st_size}".encode())
    assert local._recorded_sha256(path, st) is None
    assert LocalStore(tmp_path / "site").head("v/a/x.txt").sha256 == sha  # hashed again, and right


def test_only_stores_that_prove_bytes_by_md5_get_md5s(rig, tmp_path, layout):
    """The local store proves by sha256 alone, so its publish computes no MD5 and stores format 5; a
    bucket's listings prove by MD5, so its manifests keep every MD5 (format 3). Both verify."""
    import json

    from atomicsite.layout import manifest_key
    from atomicsite.targets import read_manifest

    v = publish(site(tmp_path), rig.store).version
    local = isinstance(rig.store, LocalStore)
    assert json.loads(rig.store.get(manifest_key(v)).data)["format"] == (5 if local else 3)
    assert all(bool(f.md5) is not local for f in read_manifest(rig.store, v).files)
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_a_content_language_change_still_links_every_file_on_the_local_store(local_rig, s3_rig, tmp_path):
    """The local store's files carry no Content-Language, so a rule changing it cannot make a copy
    wrong: nothing is uploaded again. On a bucket the objects carry it, so they are written again."""
    build = site(tmp_path)
    (build / "_headers").write_text("/*\n  Content-Language: en\n")
    for store in (local_rig.store, s3_rig.store):
        atomicsite.publish(build, store, settings=SETTINGS, source={}, layout=TREE)
    (build / "_headers").write_text("/*\n  Content-Language: de\n")
    local = atomicsite.publish(build, local_rig.store, settings=SETTINGS, source={}, layout=TREE)
    bucket = atomicsite.publish(build, s3_rig.store, settings=SETTINGS, source={}, layout=TREE)
    assert local.plan.count("upload") == 0 and local.plan.count("copy") == len(local.plan.manifest.files)
    assert bucket.plan.count("copy") == 0
    assert atomicsite.verify(None, local_rig.store, settings=SETTINGS).ok
