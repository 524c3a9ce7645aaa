"""The behavioural suite: every command and every error, run unchanged against each store rig."""

import hashlib
import json
import os
from dataclasses import replace

import pytest

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.errors import (BuildDirError, ChannelNotFound, ConflictError, IntegrityError, ObjectNotFound, UsageError,
                               VersionNotFound)
from atomicsite.config import PruneSettings
from atomicsite.headers import IMMUTABLE, REVALIDATE
from atomicsite.layout import POOL, channel_key, content_key, has_link_trees, manifest_key, object_key, pool_key
from atomicsite.manifest import Manifest
from atomicsite.stores.base import SHA256_META
from atomicsite.stores.local import LocalStore

from .helpers import SETTINGS, OpsStore, publish, publish_versions, site


pytestmark = pytest.mark.usefixtures("layout")


def live(store, channel="live"):
    return read_pointer(store, channel).version


def stored_keys(store, version):
    return sorted(i.key for i in store.list(f"v/{version}/"))


def key_of(store, version: str, path: str) -> str:
    """Where a committed version keeps the bytes of ``path``, in whichever layout it uses."""
    m = atomicsite.targets.read_manifest(store, version)
    return content_key(version, m.layout, path, m.by_path[path].sha256, link_trees=has_link_trees(store))


def in_pool(store, layout) -> bool:
    return layout == "objects" and not has_link_trees(store)


def test_publish_stores_every_file_then_manifest_then_pointer(rig, tmp_path, layout):
    build = site(tmp_path)
    result = publish(build, rig.store, message="first")
    v = result.version
    assert result.switched and live(rig.store) == v
    stored = rig.store.get(manifest_key(v)).data
    # stored compactly (atomicsite.manifest_codec); the local store's without MD5s
    assert json.loads(stored)["format"] == (5 if isinstance(rig.store, LocalStore) else 3)
    manifest = Manifest.from_json(stored, where="test", expect_version=v).to_dict()
    assert manifest.get("layout", "tree") == layout
    if in_pool(rig.store, layout):  # each content once in the pool, nothing under v/
        expected = sorted({pool_key(e["sha256"]) for e in manifest["files"].values()})
        assert sorted(i.key for i in rig.store.list(POOL)) == expected and stored_keys(rig.store, v) == []
    else:
        expected = sorted(object_key(v, p.relative_to(build).as_posix()) for p in build.rglob("*") if p.is_file())
        assert stored_keys(rig.store, v) == expected
    assert manifest["version"] == v and manifest["message"] == "first"
    assert manifest["files"]["assets/main.3f9a1c2b.css"]["cache_control"] == IMMUTABLE
    assert manifest["files"]["index.html"]["cache_control"] == REVALIDATE
    assert manifest["files"]["index.html"]["content_type"] == "text/html; charset=utf-8"
    css = rig.store.head(key_of(rig.store, v, "assets/main.3f9a1c2b.css"))
    assert css.sha256 == manifest["files"]["assets/main.3f9a1c2b.css"]["sha256"]
    if rig.keeps_headers:
        assert css.content_type == "text/css; charset=utf-8"
        assert css.cache_control == IMMUTABLE
        assert css.metadata.get(SHA256_META) == css.sha256
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_republishing_the_same_build_writes_nothing(rig, tmp_path):
    build = site(tmp_path)
    first = publish(build, rig.store)
    counted = OpsStore(rig.store)
    again = publish(build, counted)
    assert again.version == first.version
    assert again.plan.committed and again.plan.switch == "already-live" and not again.switched
    assert counted.writes() == []  # not even a claim: the pointer already protects the version
    assert counted.count("get", "head", "list") <= 3


def test_changed_build_uploads_only_changes_and_copies_the_rest(rig, tmp_path, layout):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    (build / "index.html").write_text("<h1>new home</h1>")
    (build / "new.txt").write_text("brand new")
    (build / "robots.txt").unlink()
    counted = OpsStore(rig.store)
    result = publish(build, counted)
    s = result.plan.summary()
    if layout == "objects":  # unchanged contents are in the pool already: not even a copy
        assert s["upload"]["files"] == 2 and s["copy"]["files"] == 0
        assert s["skip"]["files"] == len(result.plan.actions) - 2
        assert all(a.reason == "content already in the pool" for a in result.plan.actions if a.kind == "skip")
        if in_pool(rig.store, layout):
            assert counted.count("copy") == 0 and counted.count("put") == 2 + 4  # + summary, manifest, pointer, claim
    else:
        assert s["upload"]["files"] == 2 and s["skip"]["files"] == 0
        assert s["copy"]["files"] == len(result.plan.actions) - 2
        assert all(a.reason.startswith("same content in version " + v1) for a in result.plan.actions
                   if a.kind == "copy")
    assert live(rig.store) == result.version != v1
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok
    d = atomicsite.diff(v1, result.version, rig.store, settings=SETTINGS)
    assert (d.added, d.removed, d.changed) == (["new.txt"], ["robots.txt"], ["index.html"])


def test_resume_after_partial_upload_skips_what_is_there(rig, tmp_path):
    build = site(tmp_path)
    plan = publish(build, rig.store, dry_run=True).plan
    # Store half the files of the version by hand, as a crashed run would have left them.
    for action in plan.actions[: len(plan.actions) // 2]:
        e = action.entry
        rig.store.put(action.key, (build / e.path).read_bytes(), content_type=e.content_type,
                      cache_control=e.cache_control, metadata={SHA256_META: e.sha256})
    result = publish(build, rig.store)
    s = result.plan.summary()
    assert s["skip"]["files"] == len(plan.actions) // 2
    assert s["upload"]["files"] == len(plan.actions) - len(plan.actions) // 2
    assert all(a.reason in ("already uploaded (resumed)", "content already in the pool")
               for a in result.plan.actions if a.kind == "skip")
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_resume_redoes_an_object_with_wrong_bytes(rig, tmp_path):
    build = site(tmp_path)
    plan = publish(build, rig.store, dry_run=True).plan
    bad = plan.actions[0]
    rig.store.put(bad.key, b"garbage of another length", metadata={SHA256_META: "0" * 64})
    result = publish(build, rig.store)
    action = next(a for a in result.plan.actions if a.key == bad.key)
    assert action.kind == "upload" and action.reason in ("stored object differs", "pool object differs")
    assert atomicsite.verify(None, rig.store, settings=SETTINGS).ok


def test_dry_run_writes_nothing_and_gives_a_reason_per_file(rig, tmp_path):
    build = site(tmp_path)
    counted = OpsStore(rig.store)
    result = publish(build, counted, dry_run=True)
    assert counted.writes() == []
    assert result.dry_run and all(a.reason for a in result.plan.actions)
    assert live(rig.store) is None


def test_no_promote_commits_then_promote_by_prefix(rig, tmp_path):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    (build / "index.html").write_text("v2")
    r2 = publish(build, rig.store, promote=False)
    assert not r2.switched and r2.plan.switch == "no-promote"
    assert live(rig.store) == v1
    assert rig.store.head(manifest_key(r2.version))
    out = atomicsite.promote(r2.version[:6], rig.store, settings=SETTINGS)
    assert out.switched and live(rig.store) == r2.version
    assert read_pointer(rig.store, "live").pointer.previous == v1


def test_pin_holds_the_channel_until_unpin(rig, tmp_path):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    (build / "index.html").write_text("v2")
    v2 = publish(build, rig.store).version
    atomicsite.pin(v1, rig.store, settings=SETTINGS, message="incident 42")
    p = read_pointer(rig.store, "live").pointer
    assert p.version == v1 and p.pinned and p.message == "incident 42"
    (build / "index.html").write_text("v3")
    r3 = publish(build, rig.store)
    assert r3.plan.switch == "pinned" and not r3.switched and live(rig.store) == v1
    assert rig.store.head(manifest_key(r3.version))  # committed all the same
    with pytest.raises(ConflictError, match="pinned"):
        atomicsite.promote(r3.version, rig.store, settings=SETTINGS)
    with pytest.raises(ConflictError, match="pinned"):
        atomicsite.rollback(rig.store, settings=SETTINGS)
    atomicsite.unpin(rig.store, settings=SETTINGS)
    assert not read_pointer(rig.store, "live").pointer.pinned and live(rig.store) == v1
    assert atomicsite.promote(v2, rig.store, settings=SETTINGS).switched
    assert live(rig.store) == v2


def test_rollback_to_previous_and_to_a_named_version(rig, tmp_path):
    build = site(tmp_path)
    versions = []
    for text in ("one", "two", "three"):
        (build / "index.html").write_text(text)
        versions.append(publish(build, rig.store).version)
    out = atomicsite.rollback(rig.store, settings=SETTINGS)
    assert out.switched and live(rig.store) == versions[1]
    atomicsite.rollback(rig.store, to=versions[0][:8], settings=SETTINGS)
    assert live(rig.store) == versions[0]
    hist = atomicsite.history(rig.store, settings=SETTINGS)
    assert [h["action"] for h in hist[:2]] == ["rollback", "rollback"]
    assert hist[0]["version"] == versions[0] and hist[0]["previous"] == versions[1]


def test_channels_are_independent_pointers(rig, tmp_path):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    (build / "index.html").write_text("preview")
    pr = publish(build, rig.store, channel="pr-12")
    assert pr.switched and live(rig.store) == v1 and live(rig.store, "pr-12") == pr.version
    names = {p.channel: p.version for p in atomicsite.list_channels(rig.store, settings=SETTINGS)}
    assert names == {"live": v1, "pr-12": pr.version}
    rows = {r.version: r.channels for r in atomicsite.versions(rig.store, settings=SETTINGS)}
    assert rows == {v1: ["live"], pr.version: ["pr-12"]}
    atomicsite.delete_channel("pr-12", rig.store, settings=SETTINGS)
    assert live(rig.store, "pr-12") is None
    with pytest.raises(UsageError, match="live"):
        atomicsite.delete_channel("live", rig.store, settings=SETTINGS)
    with pytest.raises(ChannelNotFound):
        atomicsite.delete_channel("pr-99", rig.store, settings=SETTINGS)
    with pytest.raises(UsageError, match="invalid channel"):
        publish(build, rig.store, channel="Bad Name!")


def test_verify_finds_missing_and_changed_objects(rig, tmp_path):
    build = site(tmp_path)
    v = publish(build, rig.store).version
    rig.store.put(key_of(rig.store, v, "about/index.html"), b"tampered")
    rig.store.delete_many([key_of(rig.store, v, "robots.txt")])
    result = atomicsite.verify(v, rig.store, settings=SETTINGS, raise_on_failure=False)
    assert result.mismatched == ["about/index.html"] and result.missing == ["robots.txt"] and not result.ok
    with pytest.raises(IntegrityError, match="damaged"):
        atomicsite.verify(v, rig.store, settings=SETTINGS)


def test_prune_keeps_newest_and_channel_versions_and_deletes_manifest_first(rig, tmp_path, layout):
    build = site(tmp_path)
    versions = publish_versions(build, rig.store, 5)
    atomicsite.pin(versions[0], rig.store, settings=SETTINGS, channel="staging")
    counted = OpsStore(rig.store)
    dry = atomicsite.prune(counted, keep=1, grace=0, dry_run=True, settings=SETTINGS)
    assert counted.writes() == []
    assert sorted(dry.plan.delete) == sorted(versions[1:3])  # v4 newest+live, v3 previous, v0 staging
    result = atomicsite.prune(counted, keep=1, grace=0, settings=SETTINGS)
    assert sorted(result.deleted_versions) == sorted(versions[1:3])
    deletes = [keys for op, keys in counted.calls if op == "delete_many"]
    # the first delete holds the doomed manifests and nothing else; objects come after
    assert "_atomicsite/manifests/" in deletes[0] and "'v/" not in deletes[0] and POOL not in deletes[0]
    if in_pool(rig.store, layout):  # what only the pruned versions used leaves the pool
        assert any(POOL in d for d in deletes[1:])
        assert result.pool_deleted == 2  # their index.html contents; everything else is shared
    else:
        assert any("'v/" in d for d in deletes[1:])
    for v in versions[1:3]:
        assert stored_keys(rig.store, v) == []
        with pytest.raises(ObjectNotFound):
            rig.store.head(manifest_key(v))
    for v in (versions[0], versions[3], versions[4]):
        assert atomicsite.verify(v, rig.store, settings=SETTINGS).ok


def test_prune_safety_limit_deletes_nothing_without_force(rig, tmp_path):
    build = site(tmp_path)
    publish_versions(build, rig.store, 4)
    tight = replace(SETTINGS, prune=replace(SETTINGS.prune, max_delete=1))
    before = sorted(i.key for i in rig.store.list(""))
    with pytest.raises(UsageError, match="safety limit"):
        atomicsite.prune(rig.store, keep=1, grace=0, settings=tight)
    assert sorted(i.key for i in rig.store.list("")) == before
    assert len(atomicsite.prune(rig.store, keep=1, grace=0, force=True, settings=tight).deleted_versions) == 2


def test_prune_cleans_old_partial_uploads_but_not_fresh_ones(rig, tmp_path):
    build = site(tmp_path)
    publish(build, rig.store)
    rig.store.put("v/00000000deadbeef/index.html", b"half an upload")
    rig.store.put("_atomicsite/probe/left-over", b"probe")
    fresh = atomicsite.prune(rig.store, keep=1, settings=SETTINGS)  # default grace: 24 h
    assert fresh.plan.young_orphans == ["00000000deadbeef"] and not fresh.deleted_versions
    assert atomicsite.prune(rig.store, keep=1, grace=0, settings=SETTINGS).deleted_versions == ["00000000deadbeef"]
    assert stored_keys(rig.store, "00000000deadbeef") == []
    assert list(rig.store.list("_atomicsite/probe/")) == []


# -- errors: one line, the right type, nothing changed on the store ------------------------------------


def _snapshot(store):
    return sorted((i.key, i.size) for i in store.list(""))


@pytest.mark.parametrize("case", ["missing", "empty", "file", "escaping-link", "unreadable"])
def test_bad_build_dirs_are_refused_before_anything_is_written(rig, tmp_path, case, monkeypatch):
    good = site(tmp_path)
    publish(good, rig.store)
    before = _snapshot(rig.store)
    target = tmp_path / "bad"
    if case == "empty":
        target.mkdir()
    elif case == "file":
        target.write_text("not a dir")
    elif case == "escaping-link":
        target = site(tmp_path, dest="linked")
        (tmp_path / "secret.txt").write_text("do not publish")
        os.symlink(tmp_path / "secret.txt", target / "leak.txt")
    elif case == "unreadable":
        target = site(tmp_path, dest="locked")
        import atomicsite.scan as scan_module

        real_open = os.open  # scan reads with os.open (root reads a chmod 000 file, so deny it here)

        def deny(path, *a, **k):
            if str(path).endswith("robots.txt"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *a, **k)

        monkeypatch.setattr(scan_module.os, "open", deny)
    with pytest.raises(BuildDirError) as info:
        publish(target, rig.store)
    message = str(info.value)
    assert "\n" not in message
    assert {"missing": "does not exist", "empty": "no files", "file": "not a directory",
            "escaping-link": "leak.txt", "unreadable": "robots.txt"}[case] in message
    assert _snapshot(rig.store) == before


def test_unknown_ambiguous_and_incomplete_versions(rig, tmp_path):
    build = site(tmp_path)
    publish(build, rig.store)
    with pytest.raises(VersionNotFound):
        atomicsite.promote("ffffffff", rig.store, settings=SETTINGS)
    with pytest.raises(UsageError, match="not a version id"):
        atomicsite.promote("not-hex", rig.store, settings=SETTINGS)
    for suffix in ("000000000001", "000000000002"):
        rig.store.put(manifest_key("abcd" + suffix), b"{}")
    with pytest.raises(UsageError, match="ambiguous"):
        atomicsite.promote("abcd", rig.store, settings=SETTINGS)
    rig.store.put("v/1234567890abcdef/index.html", b"partial")
    before = live(rig.store)
    with pytest.raises(IntegrityError, match="incomplete"):
        atomicsite.pin("1234567890abcdef", rig.store, settings=SETTINGS)
    assert live(rig.store) == before


def test_corrupt_manifest_is_never_promoted_and_republishing_repairs_it(rig, tmp_path):
    build = site(tmp_path)
    (tmp_path / "blog_orig_index").write_text((build / "index.html").read_text())
    v1 = publish(build, rig.store).version
    (build / "index.html").write_text("v2")
    v2 = publish(build, rig.store).version
    rig.store.put(manifest_key(v1), b'{"format": 1, "version": "' + v1.encode() + b'", "files": {}}')
    with pytest.raises(IntegrityError, match="corrupt manifest"):
        atomicsite.promote(v1, rig.store, settings=SETTINGS)
    assert live(rig.store) == v2
    (build / "index.html").write_text((tmp_path / "blog_orig_index").read_text())
    repaired = publish(build, rig.store, promote=False)  # the same build rewrites its manifest
    assert repaired.version == v1 and not repaired.plan.committed
    assert repaired.plan.count("skip") == len(repaired.plan.actions)  # no object re-sent
    assert atomicsite.promote(v1, rig.store, settings=SETTINGS).switched


def test_corrupt_pointer_is_reported_and_repairable(rig, tmp_path):
    build = site(tmp_path)
    v1 = publish(build, rig.store).version
    rig.store.put(channel_key("live"), b"{not json")
    with pytest.raises(IntegrityError, match="corrupt channel pointer"):
        atomicsite.status(rig.store, settings=SETTINGS)
    with pytest.raises(IntegrityError):
        publish(build, rig.store)
    atomicsite.promote(v1, rig.store, settings=SETTINGS, repair=True)
    assert live(rig.store) == v1


def test_pointer_moved_during_publish_is_a_conflict_not_a_rollback(rig, tmp_path):
    a = site(tmp_path, dest="a")
    b = site(tmp_path, dest="b")
    (b / "index.html").write_text("publisher B")
    v0 = publish(a, rig.store).version
    (a / "index.html").write_text("publisher A")
    sneaked = {}

    def other_publisher_wins(op, args):
        # Right before A commits its manifest, B publishes and switches.
        if op == "put" and str(args[0]).startswith("_atomicsite/manifests/") and not sneaked:
            sneaked["v"] = publish(b, rig.store).version

    with pytest.raises(ConflictError, match="changed by someone else"):
        publish(a, OpsStore(rig.store, before=other_publisher_wins))
    assert live(rig.store) == sneaked["v"] != v0


def test_progress_events_arrive_while_transfers_are_still_running(local_rig, tmp_path):
    """The progress bar moves as files land, not all at once at the end."""
    import threading

    build = site(tmp_path)
    seen_progress = threading.Event()
    held = {"waited": None}

    index_sha = hashlib.sha256((build / "index.html").read_bytes()).hexdigest()

    def hold_one_upload(op, args):
        key = str(args[0]) if args else ""
        if op == "put" and (key.endswith("index.html") or key.endswith(index_sha)) and held["waited"] is None:
            held["waited"] = seen_progress.wait(timeout=5)  # other uploads must report meanwhile

    events = atomicsite.PublishEvents(on_file=lambda action: seen_progress.set())
    atomicsite.publish(build, OpsStore(local_rig.store, before=hold_one_upload), settings=SETTINGS, source={},
                       events=events)
    assert held["waited"] is True


def test_prune_older_than_keeps_young_versions(rig, tmp_path):
    versions = publish_versions(site(tmp_path), rig.store, 4)
    young = atomicsite.prune(rig.store, keep=1, older_than=3600, grace=0, settings=SETTINGS, dry_run=True)
    assert young.plan.delete == []  # everything is minutes old
    old = atomicsite.prune(rig.store, keep=1, older_than=0, grace=0, settings=SETTINGS)
    assert sorted(old.deleted_versions) == sorted(versions[:2])


def test_a_promote_of_a_version_prune_is_deleting_is_refused(local_rig, tmp_path):
    """The promote comes while prune holds its lease on the version: refused, nothing moves, prune finishes."""
    from atomicsite.errors import ConflictError as Conflict

    store = local_rig.store
    versions = publish_versions(site(tmp_path), store, 4)
    refused = []

    def promote_first(op, args):
        if op == "delete_many" and "manifests" in str(args[0]) and not refused:
            with pytest.raises(Conflict, match="being deleted by a prune") as exc:
                atomicsite.promote(versions[0], store, settings=replace(SETTINGS, prune=PruneSettings(wait_seconds=0)))
            refused.append(exc.value)

    result = atomicsite.prune(OpsStore(store, before=promote_first), keep=1, grace=0, settings=SETTINGS)
    assert refused and versions[0] in result.deleted_versions
    assert live(store) == versions[3]
    assert atomicsite.verify(None, store, settings=SETTINGS).ok


def test_history_is_bounded_and_rollback_twice_returns(local_rig, tmp_path):
    versions = publish_versions(site(tmp_path), local_rig.store, 3)
    for _ in range(21):
        atomicsite.rollback(local_rig.store, settings=SETTINGS)
    assert live(local_rig.store) == versions[1]  # an odd number of rollbacks: one back
    atomicsite.rollback(local_rig.store, settings=SETTINGS)
    assert live(local_rig.store) == versions[2]  # and the next one returns
    assert len(atomicsite.history(local_rig.store, settings=SETTINGS)) == 20


def test_two_publishers_of_the_same_build_both_succeed(rig, tmp_path):
    build = site(tmp_path)
    first = publish(build, rig.store, promote=False)
    again = publish(build, rig.store)  # finds the manifest committed and only switches
    assert first.version == again.version and again.switched and again.plan.committed


def test_pinning_the_live_version_only_sets_the_lock(rig, tmp_path):
    v = publish(site(tmp_path), rig.store).version
    out = atomicsite.pin(v, rig.store, settings=SETTINGS)
    assert not out.switched and out.pointer.pinned and live(rig.store) == v


def test_one_corrupt_preview_pointer_does_not_break_the_listings(rig, tmp_path):
    """versions and channel list report the bad channel and go on; prune stops (it could not tell what
    that channel protects)."""
    from atomicsite.cli import app
    from typer.testing import CliRunner

    build = site(tmp_path)
    v = publish(build, rig.store).version
    rig.store.put(channel_key("pr-9"), b'{"format": 1, "channel": "pr-9", "version": "nope"}')
    rows = atomicsite.versions(rig.store, settings=SETTINGS)
    assert [r.version for r in rows] == [v] and rows[0].channels == ["live"]
    assert "pr-9" in rows.corrupt_channels
    listed = atomicsite.list_channels(rig.store, settings=SETTINGS)
    assert [(c.channel, getattr(c, "corrupt", None) is not None) for c in listed] == [("live", False), ("pr-9", True)]
    with pytest.raises(IntegrityError, match="pr-9"):
        atomicsite.prune(rig.store, keep=1, settings=SETTINGS)
    env = {**rig.env, "ATOMICSITE_TARGET": rig.url}
    out = CliRunner().invoke(app, ["channel", "list", "--json"], env=env)
    assert out.exit_code == 0 and {"channel": "pr-9"}.items() <= json.loads(out.stdout)[1].items()
    human = CliRunner().invoke(app, ["versions"], env=env)
    assert human.exit_code == 0 and "pr-9" in human.output and v in human.output
