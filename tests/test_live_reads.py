"""Readers of the local store's `current` never see a mix of versions or a missing file."""

import os
import threading
import time

import atomicsite
from atomicsite.stores.local import LocalStore

from .helpers import SETTINGS, site


def test_readers_through_current_always_see_one_whole_version(tmp_path):
    root = tmp_path / "site"
    store = LocalStore(root)
    builds = {}
    for name in ("a", "b", "c"):
        build = site(tmp_path, dest=f"build-{name}")
        # Every file of a version carries the version's mark, so a mix is detectable.
        for p in build.rglob("*"):
            if p.is_file():
                p.write_bytes(p.read_bytes() + f"\n<!-- build {name} -->".encode())
        (build / f"only-in-{name}.txt").write_text(name)
        builds[name] = build
    expected = {}
    for name, build in builds.items():
        result = atomicsite.publish(build, store, settings=SETTINGS, source={})
        expected[result.version] = {
            p.relative_to(build).as_posix(): p.read_bytes() for p in build.rglob("*") if p.is_file()
        }

    stop = threading.Event()
    problems: list[str] = []
    snapshots = {"whole": 0, "files": 0}
    current = root / "current"

    def whole_site_reader():
        # As a server that resolves the docroot once per request: every file from that one version.
        while not stop.is_set():
            version_dir = os.path.realpath(current)
            version = os.path.basename(version_dir)
            want = expected.get(version)
            if want is None:
                problems.append(f"current points at unknown {version}")
                continue
            got = {}
            for dirpath, _, names in os.walk(version_dir):
                for n in names:
                    full = os.path.join(dirpath, n)
                    got[os.path.relpath(full, version_dir).replace(os.sep, "/")] = open(full, "rb").read()
            if got != want:
                problems.append(f"version {version} read back incomplete or mixed")
            snapshots["whole"] += 1

    def per_file_reader():
        # As a server that opens root/current/<path> per request: every file whole and of some version.
        all_bodies = {path: {files[path] for files in expected.values() if path in files}
                      for files in expected.values() for path in files}
        while not stop.is_set():
            try:
                body = (current / "index.html").read_bytes()
            except FileNotFoundError:
                problems.append("index.html missing through current")
                continue
            if body not in all_bodies["index.html"]:
                problems.append("index.html torn")
            snapshots["files"] += 1

    readers = [threading.Thread(target=whole_site_reader), threading.Thread(target=per_file_reader)]
    for t in readers:
        t.start()
    try:
        versions = list(expected)
        for i in range(20):
            target = versions[i % len(versions)]
            if i % 2:
                atomicsite.rollback(store, settings=SETTINGS)
            else:
                atomicsite.promote(target, store, settings=SETTINGS)
            # and republishing (a no-op upload, a real switch) while readers run
            atomicsite.publish(builds["abc"[i % 3]], store, settings=SETTINGS, source={})
            time.sleep(0.005)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not problems, problems[:5]
    assert snapshots["whole"] > 20 and snapshots["files"] > 20
