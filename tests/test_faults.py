"""A failure at every single store operation of publish and prune leaves the live site as it was,
and a plain re-run finishes the job without redoing what is already stored."""

import os

import pytest

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.errors import ObjectNotFound, StoreError
from atomicsite.layout import POOL, has_link_trees, manifest_key

from .helpers import SETTINGS, Crash, OpsStore, publish, publish_versions, site


pytestmark = pytest.mark.usefixtures("layout")


def live_state(rig):
    """What visitors get: the pointer, and on the local store where `current` points."""
    link = rig.store.live_link_target() if hasattr(rig.store, "live_link_target") else None
    return read_pointer(rig.store, "live").version, link


@pytest.mark.parametrize("exc", [Crash, StoreError], ids=["crash", "store-error"])
def test_publish_failing_at_every_operation(rig, tmp_path, exc):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    before = live_state(rig)
    (build / "index.html").write_text("<h1>second version</h1>")
    (build / "extra.txt").write_text("one more file")

    # Fail operation 1, then 2, ... each time on the state the earlier failures left behind, until
    # a run has fewer operations than the failure point and so completes.
    n = 1
    while True:
        faulty = OpsStore(rig.store, fail_at=n, exc=exc)
        try:
            result = publish(build, faulty)
        except (Crash, StoreError):
            after = live_state(rig)
            op, key = faulty.calls[-1]
            if op == "delete_many" and "_atomicsite/claims/" in key and after != before:
                # Died withdrawing its claim, after the switch: live is wholly on the new version,
                # and the claim it left expires on its own.
                assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok
            else:
                # The failing op may be the pointer write itself or anything before it: never a mix.
                assert after == before, f"live moved after a failure at op {n}: {faulty.calls[-1]}"
            n += 1
            continue
        break
    # The run with fail_at=n did not fail: it completed every step (n-1 ops was the whole job).
    assert n > 5, "publish should take several operations"
    # switched now, or by a run that died only after its switch (withdrawing its claim)
    assert result.switched or result.plan.switch == "already-live"
    v2 = result.version
    assert live_state(rig)[0] == v2 and v2 != v1
    if before[1]:
        assert live_state(rig)[1] == f"v/{v2}"
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_rerun_after_a_crash_mid_transfer_does_not_reupload(rig, tmp_path):
    build = site(tmp_path)
    publish(build, rig.store)
    before = live_state(rig)
    for i in range(12):
        (build / f"new-{i}.txt").write_text(f"new file {i}")
    # Crash at the 8th write, well inside the transfer step.
    puts = {"n": 0}

    def crash_on_eighth_write(op, args):
        if op in ("put", "copy"):
            puts["n"] += 1
            if puts["n"] == 8:
                raise Crash("power cut")

    with pytest.raises(Crash):
        publish(build, OpsStore(rig.store, before=crash_on_eighth_write))
    assert live_state(rig) == before
    redo = OpsStore(rig.store)
    result = publish(build, redo)
    resumed = result.plan.count("skip")
    assert resumed >= 1, "objects stored before the crash must be reused"
    # uploads to v/<version>/… or, in the objects layout, the pool; copies are recorded by their source
    content_keys = {a.key for a in result.plan.actions}
    copy_sources = {a.source_key for a in result.plan.actions if a.kind == "copy"}
    written = [key for op, key in redo.calls
               if (op == "put" and key in content_keys) or (op == "copy" and key in copy_sources)]
    assert len(written) == len(result.plan.actions) - resumed
    assert live_state(rig)[0] == result.version


def test_prune_failing_at_every_operation(rig, tmp_path):
    build = site(tmp_path)
    versions = publish_versions(build, rig.store, 4)
    before = live_state(rig)
    n = 1
    while True:
        try:
            atomicsite.prune(OpsStore(rig.store, fail_at=n), keep=1, grace=0, settings=SETTINGS)
        except Crash:
            assert live_state(rig) == before
            for v in versions[2:]:  # live and previous are always intact and promotable
                assert atomicsite.verify(v, rig.store, settings=SETTINGS).ok
            n += 1
            continue
        break
    assert n > 3
    # Whatever the failures left half-done is gone after the last (complete) run.
    for v in versions[:2]:
        assert list(rig.store.list(f"v/{v}/")) == []
        with pytest.raises(ObjectNotFound):
            rig.store.head(manifest_key(v))
    assert live_state(rig) == before
    assert atomicsite.rollback(rig.store, settings=SETTINGS).version == versions[2]


def test_current_follows_every_switch(tmp_path, local_rig):
    """The local store's `current` link moves with the pointer, under its lock: check both agree."""
    build = site(tmp_path)
    v1 = publish(build, local_rig.store).version
    assert os.readlink(local_rig.store.root / "current") == f"v/{v1}"
    (build / "index.html").write_text("two")
    v2 = publish(build, local_rig.store).version
    assert os.readlink(local_rig.store.root / "current") == f"v/{v2}"
    atomicsite.rollback(local_rig.store, settings=SETTINGS)
    assert os.readlink(local_rig.store.root / "current") == f"v/{v1}"


def content(key: str) -> bool:
    return key.startswith(("v/", POOL))


STEPS = {
    "plan: read pointer": lambda op, key: op == "get" and key.startswith("_atomicsite/channels/"),
    "plan: claim the version": lambda op, key: op == "put" and key.startswith("_atomicsite/claims/"),
    "plan: look for manifest": lambda op, key: op == "get" and key.startswith("_atomicsite/manifests/"),
    "plan: list stored objects": lambda op, key: op == "list" and content(key),
    "plan: look up new contents": lambda op, key: op == "head" and key.startswith(POOL),
    "transfer: upload": lambda op, key: op == "put" and content(key),
    "transfer: copy": lambda op, key: op == "copy",
    "commit: manifest": lambda op, key: op == "put" and key.startswith("_atomicsite/manifests/"),
    "switch: pointer": lambda op, key: op == "put" and key.startswith("_atomicsite/channels/"),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_publish_crash_at_each_named_step(rig, tmp_path, step, layout):
    """The sweep above may skip a step once state accumulates; hit each one on purpose."""
    if step == "transfer: copy" and layout == "objects" and not has_link_trees(rig.store):
        pytest.skip("the objects layout copies nothing: unchanged contents are already in the pool")
    if step == "plan: list stored objects" and layout == "objects" and not has_link_trees(rig.store):
        pytest.skip("one changed file: its content is looked up in the pool, the pool is not listed")
    if step == "plan: look up new contents" and layout == "tree":
        pytest.skip("the tree layout lists the version's prefix; it has no pool to look up")
    build = site(tmp_path)
    publish(build, rig.store)
    before = live_state(rig)
    (build / "index.html").write_text("<h1>next</h1>")
    hit = STEPS[step]

    def crash(op, args):
        if hit(op, str(args[0]) if args else ""):
            raise Crash(step)

    with pytest.raises(Crash):
        publish(build, OpsStore(rig.store, before=crash))
    assert live_state(rig) == before
    result = publish(build, rig.store)
    assert result.switched and live_state(rig)[0] == result.version
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_a_pointer_write_whose_answer_was_lost_is_not_a_conflict(rig, tmp_path):
    """The switch lands, the connection drops before the answer: the retry must not call it a conflict."""
    from atomicsite.errors import TransientStoreError

    build = site(tmp_path)
    publish(build, rig.store)
    (build / "index.html").write_text("next")
    lost = {"done": False}

    class AnswerLost(OpsStore):
        def put(self, key, *args, **kwargs):
            info = self.inner.put(key, *args, **kwargs)
            if key.startswith("_atomicsite/channels/") and not lost["done"]:
                lost["done"] = True
                raise TransientStoreError("connection reset after the write landed")
            return info

    result = publish(build, AnswerLost(rig.store))
    assert lost["done"] and result.switched
    assert read_pointer(rig.store, "live").version == result.version


def test_a_prune_between_promote_reading_the_manifest_and_switching_spares_the_version(local_rig, tmp_path):
    """Prune runs right before promote's pointer write: the promote's claim makes prune spare the version,
    and prune says so."""
    store = local_rig.store
    build = site(tmp_path)
    versions = publish_versions(build, store, 3)
    fired = {}

    def prune_now(op, args):
        if op == "put" and str(args[0]).startswith("_atomicsite/channels/") and not fired:
            fired["yes"] = atomicsite.prune(store, keep=1, grace=0, settings=SETTINGS)

    assert atomicsite.promote(versions[0], OpsStore(store, before=prune_now), settings=SETTINGS).switched
    assert versions[0] not in fired["yes"].deleted_versions
    assert "in use: promote by" in fired["yes"].plan.reasons[versions[0]]
    assert read_pointer(store, "live").version == versions[0]
    assert store.live_link_target() == f"v/{versions[0]}"
    assert atomicsite.verify(None, store, settings=SETTINGS).ok


def test_a_damaged_or_missing_copy_source_is_uploaded_instead(rig, tmp_path):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    rig.store.put(f"v/{v1}/robots.txt", b"damaged!", metadata={"sha256": "0" * 64})  # same key, wrong bytes
    rig.store.delete_many([f"v/{v1}/about/index.html"])
    (build / "index.html").write_text("next")
    result = publish(build, rig.store)
    assert result.switched
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_a_build_file_that_vanishes_mid_publish_is_a_one_line_error(local_rig, tmp_path):
    from atomicsite.errors import BuildDirError

    build = site(tmp_path)

    def delete_it(op, args):
        if op == "put" and content(str(args[0])) and (build / "robots.txt").exists():
            (build / "robots.txt").unlink(missing_ok=True)  # workers race here

    with pytest.raises(BuildDirError, match="robots.txt"):
        publish(build, OpsStore(local_rig.store, before=delete_it))
    assert read_pointer(local_rig.store, "live").version is None


def test_a_crash_between_pointer_and_current_is_repaired_by_the_next_command(local_rig, tmp_path, monkeypatch):
    """Pointer written, then the process dies before `current` moves: re-running publish fixes the link."""
    from atomicsite.stores.local import LocalStore

    store = local_rig.store
    build = site(tmp_path)
    v1 = publish(build, store).version
    (build / "index.html").write_text("two")

    def die(self, pointer):
        raise Crash("power cut after the pointer write")

    monkeypatch.setattr(LocalStore, "_point_current", die)
    with pytest.raises(Crash):
        publish(build, store)
    monkeypatch.undo()
    v2 = read_pointer(store, "live").version
    assert v2 != v1 and store.live_link_target() == f"v/{v1}"  # the window the crash left
    again = publish(build, store)
    assert again.plan.switch == "already-live"
    assert store.live_link_target() == f"v/{v2}"
