"""The claim/lease protocol between prune and the commands that use versions (atomicsite.claims),
on every store: one prune at a time, marks of dead processes expire, writers wait or refuse."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.claims import CLAIMS, LEASE_KEY, PruneLease, VersionClaim, read_lease
from atomicsite.config import PruneSettings
from atomicsite.errors import ConflictError, ObjectNotFound, StoreError

from .helpers import SETTINGS, OpsStore, publish_versions, site

NO_WAIT = replace(SETTINGS, prune=PruneSettings(wait_seconds=0))


def gone(store, version) -> bool:
    return not list(store.list(f"v/{version}/"))


def test_a_second_prune_is_refused_while_one_holds_the_lease(rig, tmp_path):
    versions = publish_versions(site(tmp_path), rig.store, 3)
    held = PruneLease(rig.store, [])
    held.acquire()
    with pytest.raises(ConflictError, match="another prune is running"):
        atomicsite.prune(rig.store, keep=1, grace=0, settings=SETTINGS)
    assert not gone(rig.store, versions[0])
    assert read_lease(rig.store) is not None  # the refused prune left the other's lease alone
    held.release()
    assert versions[0] in atomicsite.prune(rig.store, keep=1, grace=0, settings=SETTINGS).deleted_versions
    assert read_lease(rig.store) is None


def test_the_lease_of_a_prune_that_died_expires_and_the_next_prune_finishes(rig, tmp_path):
    build = site(tmp_path)
    versions = publish_versions(build, rig.store, 3)
    PruneLease(rig.store, [versions[0]], ttl=0.0).acquire()  # then the process died
    # a writer does not judge another's lease: it stays away from the doomed version
    (build / "index.html").write_text("version 0")
    with pytest.raises(ConflictError, match="being deleted by a prune"):
        atomicsite.publish(build, rig.store, settings=NO_WAIT, source={})
    time.sleep(0.05)
    result = atomicsite.prune(rig.store, keep=1, grace=0, settings=SETTINGS)
    assert result.deleted_versions == [versions[0]] and gone(rig.store, versions[0])
    assert read_lease(rig.store) is None
    # now the revert goes through, uploading again what prune removed
    again = atomicsite.publish(build, rig.store, settings=NO_WAIT, source={})
    assert again.switched and again.version == versions[0] and again.plan.count("upload") >= 1
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_a_corrupt_lease_counts_as_dooming_everything_until_it_expires(rig, tmp_path):
    build = site(tmp_path)
    versions = publish_versions(build, rig.store, 3)
    rig.store.put(LEASE_KEY, b"{not json")
    with pytest.raises(ConflictError, match="being deleted by a prune"):
        atomicsite.promote(versions[0], rig.store, settings=NO_WAIT)
    with pytest.raises(ConflictError, match="another prune is running"):  # young: maybe a prune mid-write
        atomicsite.prune(rig.store, keep=1, grace=0, settings=SETTINGS)
    assert read_pointer(rig.store, "live").version == versions[2] and not gone(rig.store, versions[0])


def test_a_live_claim_protects_its_version_and_a_dead_ones_expires(rig, tmp_path):
    versions = publish_versions(site(tmp_path), rig.store, 4)
    alive = VersionClaim(rig.store, versions[0], "publish")
    alive._write()  # a command in progress, as seen from outside
    dead = VersionClaim(rig.store, versions[1], "promote", ttl=0.0)
    dead._write()  # a command that died long ago
    time.sleep(0.05)
    result = atomicsite.prune(rig.store, keep=1, grace=0, settings=SETTINGS)
    assert "in use: publish by" in result.plan.reasons[versions[0]]
    assert not gone(rig.store, versions[0]) and gone(rig.store, versions[1])
    remaining = [i.key for i in rig.store.list(CLAIMS)]
    assert remaining == [alive.key]  # the dead claim was cleaned up, the live one left


def test_a_writer_waits_for_a_prune_to_finish_then_goes_on(rig, tmp_path):
    build = site(tmp_path)
    versions = publish_versions(build, rig.store, 3)
    lease = PruneLease(rig.store, [versions[0]])
    lease.acquire()
    threading.Timer(0.5, lease.release).start()
    started = time.monotonic()
    result = atomicsite.promote(versions[0], rig.store, settings=replace(SETTINGS, prune=PruneSettings(wait_seconds=20)))
    assert result.switched and time.monotonic() - started >= 0.4
    assert [i.key for i in rig.store.list(CLAIMS)] == []  # withdrawn after the switch


def test_a_claim_that_could_not_be_refreshed_stops_the_switch(rig, tmp_path):
    versions = publish_versions(site(tmp_path), rig.store, 1)
    writes = []

    def refreshes_fail(op, args):
        if op == "put" and str(args[0]).startswith(CLAIMS):
            writes.append(time.monotonic())
            if len(writes) > 1:
                raise StoreError("network down")

    claim = VersionClaim(OpsStore(rig.store, before=refreshes_fail), versions[0], "publish", ttl=0.4)
    with claim:
        claim.ensure_held()  # fresh
        time.sleep(0.5)
        assert len(writes) > 1, "the claim should have tried to refresh itself"
        with pytest.raises(ConflictError, match="lost the claim"):
            claim.ensure_held()
    with pytest.raises(ObjectNotFound):
        rig.store.head(claim.key)  # withdrawn all the same
