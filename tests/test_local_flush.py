"""Before a manifest commits on the local store, what the publish wrote is flushed to disk: syncfs on
the target's file system where libc has it, sync() otherwise (fault injection on the two calls)."""

from __future__ import annotations

import os

import pytest

import atomicsite
from atomicsite.stores import local

from .helpers import SETTINGS, site


@pytest.fixture
def flushes(monkeypatch):
    """Every flush a publish asks for: ("syncfs", st_dev of the file it was given) or ("sync",)."""
    seen = []
    monkeypatch.setattr(local.os, "sync", lambda: seen.append(("sync",)))
    return seen


def _syncfs_that(answer: int, seen: list):
    def syncfs(fd: int) -> int:
        seen.append(("syncfs", os.fstat(fd).st_dev))
        return answer
    return syncfs


def test_the_commit_flushes_only_the_targets_file_system(local_rig, tmp_path, monkeypatch, flushes):
    monkeypatch.setattr(local, "_libc_syncfs", lambda: _syncfs_that(0, flushes))
    atomicsite.publish(site(tmp_path), local_rig.store, settings=SETTINGS, source={})
    assert flushes == [("syncfs", os.stat(local_rig.store.root).st_dev)]  # one, before the manifest; no sync()


@pytest.mark.parametrize("syncfs", ["missing", "fails"])
def test_without_a_working_syncfs_the_commit_flushes_everything(local_rig, tmp_path, monkeypatch, flushes, syncfs):
    monkeypatch.setattr(local, "_libc_syncfs", lambda: None if syncfs == "missing" else _syncfs_that(-1, flushes))
    atomicsite.publish(site(tmp_path), local_rig.store, settings=SETTINGS, source={})
    assert flushes[-1] == ("sync",) and len(flushes) == (1 if syncfs == "missing" else 2)


def test_libc_syncfs_is_found_on_linux():
    if not os.uname().sysname == "Linux":
        pytest.skip("syncfs is Linux's")
    assert local._libc_syncfs() is not None
