"""publish pauses Python's cyclic garbage collector for the call and always resumes it."""

from __future__ import annotations

import gc

import pytest

import atomicsite
from atomicsite.errors import BuildDirError
from atomicsite.publish import PublishEvents

from .helpers import SETTINGS, site


def test_the_collector_is_paused_during_a_publish_and_resumed_after(local_rig, tmp_path):
    seen = []
    events = PublishEvents(on_stage=lambda stage: seen.append((stage, gc.isenabled())))
    assert gc.isenabled()
    atomicsite.publish(site(tmp_path), local_rig.store, settings=SETTINGS, source={}, events=events)
    assert seen and not any(enabled for _, enabled in seen)
    assert gc.isenabled()
    with pytest.raises(BuildDirError):  # and after a publish that fails
        atomicsite.publish(tmp_path / "missing", local_rig.store, settings=SETTINGS, source={})
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(local_rig, tmp_path):
    gc.disable()
    try:
        atomicsite.publish(site(tmp_path), local_rig.store, settings=SETTINGS, source={})
        assert not gc.isenabled()
    finally:
        gc.enable()
