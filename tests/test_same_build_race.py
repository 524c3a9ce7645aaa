"""Two publishes of the same build at once: the one that loses the pointer swap still succeeded.

Both read the pointer, upload (or find) the same version, and swap the pointer against the same
token; a barrier in front of the pointer write makes them meet there every time. The loser finds the
channel serving the very version it was publishing: that is "already serves", exit 0, not exit 3.
"""

import threading

import pytest

from atomicsite.channels import next_pointer, read_pointer, write_pointer
from atomicsite.errors import ConflictError
from atomicsite.layout import channel_key

from .helpers import OpsStore, publish, site


def _race(store, build, channel="live", **kw):
    meet = threading.Barrier(2, timeout=60)

    def at_pointer(op, args):
        if op == "put" and args[0] == channel_key(channel):
            meet.wait()

    racing = OpsStore(store, before=at_pointer)
    results, errors = [], []

    def one(n):
        try:  # distinct messages: two pointers written in the same millisecond must still differ
            results.append(publish(build, racing, channel=channel, message=f"run {n}", **kw))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return results, errors


@pytest.mark.parametrize("first_publish", [True, False], ids=["create", "update"])
def test_two_publishes_of_the_same_build_both_succeed(rig, tmp_path, first_publish):
    build = site(tmp_path)
    before = None
    if not first_publish:  # the channel exists: both swap with If-Match against the same token
        before = publish(build, rig.store).version
        (build / "index.html").write_text("the new build")
    results, errors = _race(rig.store, build)
    assert errors == []
    assert len(results) == 2 and results[0].version == results[1].version
    version = results[0].version
    assert read_pointer(rig.store, "live").version == version != before
    won = [r for r in results if r.switched]
    lost = [r for r in results if not r.switched]
    assert len(won) == 1 and len(lost) == 1
    assert lost[0].outcome.note.startswith(f"already serves {version}")
    assert lost[0].to_dict()["live"] == version
    history = read_pointer(rig.store, "live").pointer.history
    assert [h.version for h in history].count(version) == 1  # one switch recorded, not two


def test_the_loser_is_reported_as_already_serving(rig, tmp_path, capsys):
    """What the CLI prints for the publish that lost the swap (exit 0: nothing raised)."""
    from atomicsite import report

    results, errors = _race(rig.store, site(tmp_path))
    assert errors == []
    [lost] = [r for r in results if not r.switched]
    report.publish_result(lost)
    printed = capsys.readouterr().out
    assert f"channel 'live' already serves {lost.version}" in printed and "switched it at the same time" in printed
    assert "changed by someone else" not in printed


def test_a_different_build_winning_is_still_a_conflict(rig, tmp_path):
    """Only the same version (and pin) counts as success; anything else stays exit 3."""
    build = site(tmp_path)
    publish(build, rig.store)
    state = read_pointer(rig.store, "live")
    (build / "index.html").write_text("theirs")
    theirs = publish(build, rig.store).version

    ours = next_pointer(state, "0" * 16, action="publish")
    with pytest.raises(ConflictError, match=f"it now serves {theirs}"):
        write_pointer(rig.store, state, ours)
    same = next_pointer(state, theirs, action="publish")
    after = write_pointer(rig.store, state, same)
    assert after.pointer.version == theirs and after.pointer != same  # theirs, reported as success
    pinned = next_pointer(state, theirs, action="pin", pinned=True)
    with pytest.raises(ConflictError):  # same version but we wanted it pinned: not what we asked for
        write_pointer(rig.store, state, pinned)
