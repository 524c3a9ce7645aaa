"""Several processes publish, promote, roll back, pin and prune one target at once, in rounds chosen by a
seeded random generator; after every round the invariant is checked: every channel's version verifies,
and no committed manifest names a missing object.

Bounded: a few workers, a few rounds, a timeout on every wait. Failures print the seed; re-run one
with ATOMICSITE_STRESS_SEED=N.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
import traceback
from pathlib import Path

import pytest

import atomicsite
from atomicsite.channels import read_all_pointers
from atomicsite.layout import OBJECTS, TREE, content_key, has_link_trees, version_prefix
from atomicsite.targets import list_manifest_infos, read_manifest

from .helpers import SETTINGS

WORKERS = 4
ROUNDS = 10
BUILDS = 4
CHANNELS = ("live", "staging")
WAIT = 120  # seconds any one barrier may take before the test gives up


def make_builds(tmp_path: Path) -> list[str]:
    builds = []
    for i in range(BUILDS):
        build = tmp_path / f"build-{i}"
        (build / "assets").mkdir(parents=True)
        (build / "index.html").write_text(f"<h1>build {i}</h1>")
        (build / "assets" / "app.js").write_text(f"console.log({i % 2})")  # shared between builds
        (build / "about.html").write_text("<h1>about</h1>")
        builds.append(str(build))
    return builds


def worker(n: int, seed: int, url: str, env: dict, builds: list[str], start, done, errors) -> None:
    os.environ.update(env)
    from dataclasses import replace

    from atomicsite.config import PruneSettings, load_settings
    from atomicsite.errors import AtomicsiteError

    settings = replace(load_settings(), target=url, concurrency=4, prune=PruneSettings(wait_seconds=0))
    rng = random.Random(seed * 1000 + n)
    ops = ["publish"] * 4 + ["promote"] * 2 + ["rollback", "prune", "prune", "pin", "unpin"]
    for _ in range(ROUNDS):
        start.wait(WAIT)
        # Worker 0 prunes every round, so that every round races a prune; a random delay spreads
        # the others over its steps.
        op, channel = ("prune" if n == 0 else rng.choice(ops)), rng.choice(CHANNELS)
        time.sleep(rng.uniform(0, 0.15))
        try:
            if op == "publish":
                atomicsite.publish(rng.choice(builds), url, channel=channel, settings=settings, source={})
            elif op in ("promote", "pin"):
                versions = [row.version for row in atomicsite.versions(url, settings=settings)]
                if versions:
                    getattr(atomicsite, op)(rng.choice(versions), url, channel=channel, settings=settings)
            elif op == "rollback":
                atomicsite.rollback(url, channel=channel, settings=settings)
            elif op == "unpin":
                atomicsite.unpin(url, channel=channel, settings=settings)
            else:
                atomicsite.prune(url, keep=1, grace=0, force=True, settings=settings)
        except AtomicsiteError:
            pass  # conflicts, refusals, "nothing published yet": all allowed; breaking the invariant is not
        except BaseException:
            errors.put(f"worker {n}, {op} on {channel}: {traceback.format_exc()}")
        done.wait(WAIT)


def check_invariant(store) -> None:
    for name, state in read_all_pointers(store).items():
        report = atomicsite.verify(state.pointer.version, store, settings=SETTINGS, raise_on_failure=False)
        assert report.ok, f"channel {name!r} serves {state.pointer.version}, which does not verify: {report.to_dict()}"
    pool = {i.key for i in store.list("_atomicsite/objects/")}
    links = has_link_trees(store)
    for version, _ in list_manifest_infos(store):
        manifest = read_manifest(store, version)
        stored = {i.key for i in store.list(version_prefix(version))} | pool
        missing = [f.path for f in manifest.files
                   if content_key(version, manifest.layout, f.path, f.sha256, link_trees=links) not in stored]
        assert not missing, f"committed version {version} ({manifest.layout} layout) is missing {missing}"


@pytest.mark.parametrize("layout", [TREE, OBJECTS])
def test_publishers_promoters_and_pruners_in_parallel_processes(rig, tmp_path, layout):
    """Over both layouts: in the objects layout every publish of a changed build relies on the served
    version's manifest for what the pool holds, while prunes collect the pool."""
    if rig.name == "local" and not hasattr(os, "fork"):
        pytest.skip("POSIX only")
    seed = int(os.environ.get("ATOMICSITE_STRESS_SEED", random.SystemRandom().randrange(1 << 16)))
    builds = make_builds(tmp_path)
    ctx = multiprocessing.get_context("spawn")  # the parent runs server threads: never fork it
    start, done, errors = ctx.Barrier(WORKERS + 1), ctx.Barrier(WORKERS + 1), ctx.Queue()
    env = {**rig.env, "ATOMICSITE_LAYOUT": layout}
    procs = [ctx.Process(target=worker, args=(n, seed, rig.url, env, builds, start, done, errors), daemon=True)
             for n in range(WORKERS)]
    for p in procs:
        p.start()
    try:
        for round_ in range(ROUNDS):
            start.wait(WAIT)
            done.wait(WAIT)
            assert errors.empty(), f"seed {seed}, round {round_}: {errors.get()}"
            try:
                check_invariant(rig.store)
            except AssertionError as exc:
                raise AssertionError(f"seed {seed}, after round {round_}: {exc}") from None
    finally:
        start.abort()  # a failed round: release the workers instead of letting them wait out WAIT
        done.abort()
        for p in procs:
            p.join(timeout=WAIT)
            if p.is_alive():
                p.kill()
