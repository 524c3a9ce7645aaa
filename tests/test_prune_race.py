"""Prune against publish, promote and pin at every interleaving, on every store.

The invariant is the product's one promise: whatever the order, every channel names a version whose
objects are all there and hold the right bytes. Each test runs one command up to its k-th store
operation, runs the other command whole at that point, then lets the first one finish, for every k.
A command may refuse (a conflict, "incomplete version"); it may never leave a channel on a version
that is missing objects.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import atomicsite
from atomicsite.channels import read_all_pointers
from atomicsite.errors import AtomicsiteError

from atomicsite.config import PruneSettings, Settings

from .helpers import OpsStore, publish_versions

pytestmark = pytest.mark.usefixtures("layout")

# One transfer at a time, so that "the k-th operation" names the same point on every run.
SETTINGS = replace(Settings(concurrency=1), prune=PruneSettings(wait_seconds=0))
# The doomed version is the oldest of three: keep=1 keeps the newest, and the live channel's
# previous version is kept too.
KEEP = 1


def tiny_site(tmp_path: Path) -> Path:
    build = tmp_path / "build"
    if build.exists():
        shutil.rmtree(build)
    (build / "css").mkdir(parents=True)
    (build / "index.html").write_text("version 0")
    (build / "css" / "site.css").write_text("body { color: black }")
    (build / "about.html").write_text("<h1>about</h1>")
    return build


def every_channel_verifies(store) -> None:
    for name, state in read_all_pointers(store).items():
        report = atomicsite.verify(state.pointer.version, store, settings=SETTINGS, raise_on_failure=False)
        assert report.ok, f"channel {name!r} serves {state.pointer.version}, which does not verify: {report.to_dict()}"


def publish(build: Path, store):
    return atomicsite.publish(build, store, settings=SETTINGS, source={})


def run_move(move: str, store, build: Path, doomed: str):
    """Bring the doomed version back: publish its build again (a revert), promote it, or pin it."""
    if move == "publish":
        (build / "index.html").write_text("version 0")
        return publish(build, store)
    if move == "publish-new":
        (build / "index.html").write_text("a brand new build")
        return publish(build, store)
    if move == "promote":
        return atomicsite.promote(doomed, store, settings=SETTINGS)
    return atomicsite.pin(doomed, store, settings=SETTINGS)


def run_prune(store):
    return atomicsite.prune(store, keep=KEEP, grace=0, settings=SETTINGS)


@contextlib.contextmanager
def fresh_target(rig, name):
    store = rig.fresh(name)
    try:
        yield store
    finally:
        store.close()


def interleave(rig, tmp_path, first: str, second: str, *, move: str):
    """Run ``first`` up to each of its store operations in turn, ``second`` whole there, then the rest."""
    k = 1
    while True:
        with fresh_target(rig, f"{first}-{move}-{k}") as store:
            build = tiny_site(tmp_path)
            doomed = publish_versions(build, store, 3)[0]
            fired = []

            def second_now(op, args, k=k, store=store, build=build):
                if len(ops.calls) == k and not fired:
                    fired.append(k)
                    with contextlib.suppress(AtomicsiteError):
                        (run_prune(store) if second == "prune" else run_move(move, store, build, doomed))

            ops = OpsStore(store, before=second_now)
            with contextlib.suppress(AtomicsiteError):
                run_prune(ops) if first == "prune" else run_move(move, ops, build, doomed)
            every_channel_verifies(store)
            if not fired:
                return k - 1  # the first command had fewer than k operations: every point was tried
        k += 1


@pytest.mark.parametrize("move", ["publish", "promote", "pin"])
def test_reviving_a_doomed_version_at_every_step_of_prune(rig, tmp_path, move):
    steps = interleave(rig, tmp_path, "prune", move, move=move)
    assert steps > 5


@pytest.mark.parametrize("move", ["publish", "publish-new", "promote"])
def test_a_whole_prune_at_every_step_of_a_move(rig, tmp_path, move):
    steps = interleave(rig, tmp_path, move, "prune", move=move)
    assert steps > 3
