"""Which layout a publish uses, and the local store's link trees proven by the inode."""

from __future__ import annotations

import importlib

import atomicsite
from atomicsite.config import Settings
from atomicsite.layout import OBJECTS, POOL, TREE
from atomicsite.stores.local import LocalStore

from .helpers import SETTINGS, publish, site

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
    assert publish_module._default_layout(local_rig.store, state, Settings(cloudfront=object())) == TREE


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
