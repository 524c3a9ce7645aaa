"""``channel delete`` is a compare-and-delete: a channel switched after it was read is not deleted."""

import json
import os

import pytest
from typer.testing import CliRunner

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.cli import app
from atomicsite.errors import ConflictError
from atomicsite.layout import channel_key

from .helpers import SETTINGS, OpsStore, publish, site
from .test_store_contract import CONDITIONAL_DELETES


def test_delete_refuses_a_channel_switched_after_it_was_read(rig, tmp_path):
    build = site(tmp_path)
    first = publish(build, rig.store, channel="pr-7").version
    (build / "index.html").write_text("second")
    second = publish(build, rig.store, channel="pr-9").version

    def someone_switches(op, args):
        if op == "delete" and args[0] == channel_key("pr-7"):
            atomicsite.promote(second, rig.store, channel="pr-7", settings=SETTINGS)

    racing = OpsStore(rig.store, before=someone_switches)
    if not CONDITIONAL_DELETES[rig.name]:
        # The emulator cannot refuse, so the honest answer is a delete that says it did not check.
        done = atomicsite.delete_channel("pr-7", racing, settings=SETTINGS)
        assert not done.conditional and "without checking" in done.note
        assert read_pointer(rig.store, "pr-7").pointer is None
        return
    with pytest.raises(ConflictError, match=f"switched to {second}.*not deleted"):
        atomicsite.delete_channel("pr-7", racing, settings=SETTINGS)
    assert read_pointer(rig.store, "pr-7").version == second  # the newer switch survived
    assert first != second
    done = atomicsite.delete_channel("pr-7", rig.store, settings=SETTINGS)
    assert done.conditional and done.version == second and done.note == ""
    assert read_pointer(rig.store, "pr-7").pointer is None


def test_delete_that_finds_the_pointer_already_gone_is_done(rig, tmp_path):
    """A retry whose first attempt landed (or a second deleter) finds nothing: that is success."""
    build = site(tmp_path)
    v = publish(build, rig.store, channel="pr-3").version

    def someone_deletes(op, args):
        if op == "delete" and args[0] == channel_key("pr-3"):
            rig.store.delete_many([channel_key("pr-3")])

    done = atomicsite.delete_channel("pr-3", OpsStore(rig.store, before=someone_deletes), settings=SETTINGS)
    assert done.version == v
    assert read_pointer(rig.store, "pr-3").pointer is None
    if CONDITIONAL_DELETES[rig.name]:
        assert "already gone" in done.note


def test_cli_channel_delete_says_whether_it_checked(rig, tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    for key, value in rig.env.items():
        monkeypatch.setenv(key, value)
    publish(site(tmp_path), rig.store, channel="pr-5")
    result = CliRunner().invoke(app, ["channel", "delete", "pr-5", "--target", rig.url, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["deleted"] == "pr-5" and out["conditional"] is CONDITIONAL_DELETES[rig.name]
    publish(site(tmp_path, dest="again"), rig.store, channel="pr-6")
    human = CliRunner().invoke(app, ["channel", "delete", "pr-6", "--target", rig.url])
    assert human.exit_code == 0 and "deleted channel 'pr-6'" in human.stdout
    assert ("without checking" in human.stdout) is not CONDITIONAL_DELETES[rig.name]
