"""On the local store the manifest's MD5s are computed off the critical path (atomicsite.deferred_md5):
every MD5 is still right, an unchanged content is not read again for it, and a build file that
changes meanwhile fails the publish before anything is committed."""

from __future__ import annotations

import hashlib
import os

import pytest

import atomicsite
from atomicsite import deferred_md5
from atomicsite.channels import read_pointer
from atomicsite.errors import BuildDirError
from atomicsite.layout import OBJECTS, TREE
from atomicsite.targets import find_manifest

from .helpers import SETTINGS, OpsStore, site


def _publish(build, store, layout, **kw):
    return atomicsite.publish(build, store, settings=SETTINGS, source={}, layout=layout, **kw)


@pytest.mark.parametrize("layout", [TREE, OBJECTS])
def test_every_md5_in_the_manifest_is_the_file_s(local_rig, tmp_path, layout):
    build = site(tmp_path)
    _publish(build, local_rig.store, layout)
    (build / "index.html").write_text("<p>second</p>")
    for result in (_publish(build, local_rig.store, layout), _publish(build, local_rig.store, layout, dry_run=True)):
        stored = find_manifest(local_rig.store, result.version)
        for manifest in (stored, result.plan.manifest):
            assert {f.path: f.md5 for f in manifest.files} == {
                f.path: hashlib.md5((build / f.path).read_bytes()).hexdigest() for f in manifest.files}


def test_a_tree_publish_reads_again_only_the_contents_no_manifest_knows(local_rig, tmp_path, monkeypatch):
    build = site(tmp_path)
    _publish(build, local_rig.store, TREE)
    (build / "index.html").write_text("<p>second</p>")
    (build / "new.txt").write_text("new")
    read = []
    real = deferred_md5.md5_of
    monkeypatch.setattr(deferred_md5, "md5_of", lambda f: read.append(f.entry.path) or real(f))
    result = _publish(build, local_rig.store, TREE)
    assert result.switched and sorted(read) == ["index.html", "new.txt"]


def test_a_build_file_that_changes_before_its_md5_is_read_fails_the_publish(local_rig, tmp_path):
    store = local_rig.store
    build = site(tmp_path)
    _publish(build, store, OBJECTS)
    before = read_pointer(store, "live").version, store.live_link_target()
    (build / "index.html").write_text("<p>second</p>")
    touched = build / "robots.txt"  # unchanged content: no upload reads it, only the MD5 thread
    done = []

    def touch_after_the_scan(op, args):
        if not done and op == "get":  # the pointer read: the scan is over, the MD5s are not read yet
            st = touched.stat()
            os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
            done.append(True)

    with pytest.raises(BuildDirError, match="changed during publish"):
        _publish(build, OpsStore(store, before=touch_after_the_scan), OBJECTS)
    assert (read_pointer(store, "live").version, store.live_link_target()) == before
    assert find_manifest(store, atomicsite.publish(build, store, settings=SETTINGS, source={}, layout=OBJECTS,
                                                   dry_run=True).version) is None  # nothing committed
    assert _publish(build, store, OBJECTS).switched  # and a re-run goes through
