"""The older-commit guard, on a git history this module makes, through the library and the CLI.

The history (each commit changes ``site/index.html``, so each builds a different version):

    t1 (2026-01-01) ── t2 (01-02) ── t3 (01-03) ── t4 (committer clock behind: 2025-12-31)
      └── side (2025-12-30, a branch off t1)

Publishes run inside clones of it, as CI does: full clones (ancestry known) and ``--depth 1`` clones
(ancestry unknown: committer time, or ancestors a manifest recorded, must decide).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import atomicsite
from atomicsite.channels import read_pointer
from atomicsite.cli import app
from atomicsite.commit_order import COMMITTER_TIME, GIT_ANCESTRY, RECORDED_ANCESTRY, compare_sources, git_ancestry
from atomicsite.errors import EXIT_CONFLICT, OlderBuildRefused
from atomicsite.targets import detect_source, find_manifest, list_manifest_infos

from .helpers import SETTINGS
from .test_github_action import DOC, gh, github_api  # noqa: F401 - gh (and its github_api): the local runner for action.yml

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

DATES = {"t1": "2026-01-01T10:00:00+00:00", "t2": "2026-01-02T10:00:00+00:00", "t3": "2026-01-03T10:00:00+00:00",
         "t4": "2025-12-31T10:00:00+00:00", "side": "2025-12-30T10:00:00+00:00"}
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def git(cwd, *args: str, **env: str) -> str:
    full_env = {**os.environ, **GIT_ENV, **env}
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        full_env.pop(name, None)
    return subprocess.run(["git", *args], cwd=cwd, env=full_env, check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit(repo: Path, tag: str) -> str:
    (repo / "site" / "index.html").write_text(f"<h1>{tag}</h1>\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", tag, GIT_AUTHOR_DATE=DATES[tag], GIT_COMMITTER_DATE=DATES[tag])
    git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """The origin repository; ``history.sha[tag]`` is each commit's id."""
    repo = tmp_path_factory.mktemp("origin")
    git(repo, "init", "-q", "-b", "main")
    (repo / "site").mkdir()
    (repo / "site" / "style.css").write_text("body { color: #222 }\n")
    sha = {}
    for tag in ("t1", "t2", "t3", "t4"):
        sha[tag] = _commit(repo, tag)
    git(repo, "checkout", "-q", "-b", "side", "t1")
    sha["side"] = _commit(repo, "side")
    git(repo, "checkout", "-q", "main")

    class History:
        path = repo

    History.sha = sha
    return History


@pytest.fixture(autouse=True)
def not_in_ci(monkeypatch):
    """detect_source reads GITHUB_* first: these tests play CI themselves where they mean to."""
    for name in [k for k in os.environ if k.startswith(("GITHUB_", "ATOMICSITE_"))]:
        monkeypatch.delenv(name)


def clone(history, dest: Path, tag: str, *, depth: int | None = None) -> Path:
    """A checkout of ``tag`` at ``dest``: full history, or ``--depth N`` as CI's default checkout."""
    shallow = ["--depth", str(depth)] if depth else []
    git(dest.parent, "clone", "-q", *shallow, "--branch", tag, f"file://{history.path}", str(dest))
    return dest


def publish_at(checkout: Path, store, monkeypatch, **kw):
    """Publish ``checkout``'s site from inside it, with provenance detected as a real run does."""
    monkeypatch.chdir(checkout)
    return atomicsite.publish(checkout / "site", store, settings=SETTINGS, **kw)


def other_version(store, known: str) -> str:
    [v] = [v for v, _ in list_manifest_infos(store) if v != known]
    return v


def live(store, channel="live"):
    return read_pointer(store, channel).version


# --- the library, on every store -----------------------------------------------------------------

def test_an_older_commit_is_refused_and_stays_committed(rig, history, tmp_path, monkeypatch):
    new = publish_at(clone(history, tmp_path / "new", "t3"), rig.store, monkeypatch)
    assert new.switched and new.outcome.order.rule == "nothing live"
    old_checkout = clone(history, tmp_path / "old", "t1")  # a full clone: it knows t3 too
    with pytest.raises(OlderBuildRefused) as refused:
        publish_at(old_checkout, rig.store, monkeypatch)
    err = refused.value
    assert err.exit_code == EXIT_CONFLICT == 3 and err.kind == "older_commit"
    old_version = other_version(rig.store, new.version)
    text = str(err)
    for name in (new.version, old_version, history.sha["t1"][:12], history.sha["t3"][:12], GIT_ANCESTRY):
        assert name in text
    assert "\n" not in text and "--allow-older" in text and f"rollback --to {old_version}" in text
    assert live(rig.store) == new.version  # live unchanged
    assert find_manifest(rig.store, old_version) is not None  # ... and the version committed

    forced = publish_at(old_checkout, rig.store, monkeypatch, allow_older=True)
    assert forced.switched and live(rig.store) == old_version
    assert forced.outcome.order.allowed_by_flag and "--allow-older" in forced.outcome.note
    assert forced.to_dict()["older_guard"] == {**forced.outcome.order.to_dict(), "refused": False}


def test_promote_is_guarded_rollback_and_pin_are_not(rig, history, tmp_path, monkeypatch):
    checkout = clone(history, tmp_path / "repo", "t1")
    v1 = publish_at(checkout, rig.store, monkeypatch).version
    git(checkout, "checkout", "-q", "t3")
    v3 = publish_at(checkout, rig.store, monkeypatch)
    assert v3.switched and v3.outcome.order.decision == "newer" and v3.outcome.order.rule == GIT_ANCESTRY
    v3 = v3.version

    with pytest.raises(OlderBuildRefused, match=f"from {v3} .* to {v1} "):
        atomicsite.promote(v1, rig.store, settings=SETTINGS)
    assert live(rig.store) == v3
    back = atomicsite.rollback(rig.store, settings=SETTINGS)  # explicit: never judged
    assert back.switched and live(rig.store) == v1 and back.order is None
    forward = atomicsite.promote(v3, rig.store, settings=SETTINGS)
    assert forward.switched and forward.order.decision == "newer"
    pinned = atomicsite.pin(v1, rig.store, settings=SETTINGS)
    assert pinned.switched and live(rig.store) == v1 and read_pointer(rig.store, "live").pointer.pinned
    atomicsite.unpin(rig.store, settings=SETTINGS)
    atomicsite.promote(v3, rig.store, settings=SETTINGS)
    allowed = atomicsite.promote(v1, rig.store, settings=SETTINGS, allow_older=True)
    assert allowed.switched and allowed.order.allowed_by_flag and live(rig.store) == v1


def test_shallow_ci_checkouts_fall_back_to_committer_time(rig, history, tmp_path, monkeypatch):
    """fetch-depth: 1 on both runs: neither checkout knows the other commit, the times decide."""
    new = publish_at(clone(history, tmp_path / "run-new", "t3", depth=1), rig.store, monkeypatch)
    source = find_manifest(rig.store, new.version).source
    assert source["commit"] == history.sha["t3"] and source["committed_at"] == DATES["t3"]
    assert source["shallow"] is True and "ancestors" not in source  # a depth-1 checkout has none to record

    rerun = clone(history, tmp_path / "run-old", "t2", depth=1)
    with pytest.raises(OlderBuildRefused, match=f"by {COMMITTER_TIME}: {history.sha['t2'][:12]} committed "
                                                f"{re.escape(DATES['t2'])}, {history.sha['t3'][:12]} committed"):
        publish_at(rerun, rig.store, monkeypatch)
    assert live(rig.store) == new.version
    preview = publish_at(rerun, rig.store, monkeypatch, dry_run=True)
    assert preview.to_dict()["older_guard"]["refused"] is True
    assert preview.order.rule == COMMITTER_TIME


def test_recorded_ancestry_decides_where_the_checkout_cannot(rig, history, tmp_path, monkeypatch):
    """t4's committer clock was behind: by time it looks older than t3, by ancestry it is newer."""
    full = clone(history, tmp_path / "full", "t3")
    publish_at(full, rig.store, monkeypatch)
    git(full, "checkout", "-q", "t4")
    v4 = publish_at(full, rig.store, monkeypatch)  # the full clone knows t3 is t4's parent
    assert v4.switched and (v4.outcome.order.decision, v4.outcome.order.rule) == ("newer", GIT_ANCESTRY)
    recorded = find_manifest(rig.store, v4.version).source["ancestors"]
    assert recorded[:3] == [history.sha["t3"], history.sha["t2"], history.sha["t1"]]

    # A shallow re-run of t3: its time (01-03) is later than t4's (12-31), but t4's manifest lists t3.
    rerun = clone(history, tmp_path / "rerun", "t3", depth=1)
    with pytest.raises(OlderBuildRefused, match=f"by {RECORDED_ANCESTRY}"):
        publish_at(rerun, rig.store, monkeypatch)
    assert live(rig.store) == v4.version


def test_builds_on_another_branch_are_not_older(rig, history, tmp_path, monkeypatch):
    checkout = clone(history, tmp_path / "repo", "t3")
    publish_at(checkout, rig.store, monkeypatch)
    git(checkout, "checkout", "-q", "side")  # committed before t3, but not its ancestor
    side = publish_at(checkout, rig.store, monkeypatch)
    assert side.switched and side.outcome.order.decision == "diverged"


def test_builds_without_source_info_are_never_refused_and_dry_run_says_so(rig, history, tmp_path, monkeypatch):
    checkout = clone(history, tmp_path / "repo", "t3")
    publish_at(checkout, rig.store, monkeypatch)
    (checkout / "site" / "index.html").write_text("built outside git")
    dry = publish_at(checkout, rig.store, monkeypatch, source={}, dry_run=True)
    assert dry.order.decision == "unknown" and dry.to_dict()["older_guard"]["rule"] == "no source info"
    no_source = publish_at(checkout, rig.store, monkeypatch, source={})
    assert no_source.switched and no_source.outcome.order.decision == "unknown"
    # ... and a live build without source info does not block one with it either
    git(checkout, "checkout", "-q", "--", "site")
    git(checkout, "checkout", "-q", "t1")
    t1 = publish_at(checkout, rig.store, monkeypatch)
    assert t1.switched and "records no source commit" in t1.outcome.order.detail


# --- the CLI --------------------------------------------------------------------------------------

def test_cli_refuses_with_exit_3_and_allow_older_overrides(rig, history, tmp_path, monkeypatch):
    for key, value in {**rig.env, "ATOMICSITE_TARGET": rig.url}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    def cli(checkout, *args):
        monkeypatch.chdir(checkout)
        return runner.invoke(app, list(args))

    new = clone(history, tmp_path / "new", "t3", depth=1)
    assert cli(new, "publish", "site").exit_code == 0
    old = clone(history, tmp_path / "old", "t1", depth=1)

    dry = cli(old, "publish", "site", "--dry-run")
    assert dry.exit_code == 0 and "older-commit guard would refuse the switch" in dry.stdout
    outside = tmp_path / "not-a-checkout"
    outside.mkdir()
    unknown = cli(outside, "publish", str(old / "site"), "--dry-run")  # no git here: no source info
    assert unknown.exit_code == 0 and "older-commit guard could not judge (no source info" in unknown.stdout
    refused = cli(old, "publish", "site", "--json")
    assert refused.exit_code == 3
    doc = json.loads(refused.stdout)
    assert doc["error"] == "older_commit" and history.sha["t1"][:12] in doc["message"]
    assert history.sha["t3"][:12] in doc["message"] and COMMITTER_TIME in doc["message"]
    human = cli(old, "publish", "site")
    assert human.exit_code == 3 and "Traceback" not in human.output
    [line] = [ln for ln in human.stderr.splitlines() if ln.startswith("error:")]  # after the progress lines
    assert line.startswith("error: refusing to switch 'live'") and line.endswith("--allow-older'.")

    old_version = re.search(r" to ([0-9a-f]{16,}) \(commit", doc["message"]).group(1)
    assert cli(old, "promote", old_version).exit_code == 3
    allowed = cli(old, "promote", old_version, "--allow-older", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["older_guard"]["allowed_by_flag"] is True
    back = cli(new, "publish", "site", "--json")  # newer again: fine
    assert back.exit_code == 0 and json.loads(back.stdout)["switched"] is True
    again = cli(old, "publish", "site", "--allow-older", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["switched"] is True


# --- the rules themselves -------------------------------------------------------------------------

def test_git_ancestry_trusts_only_a_yes_in_a_shallow_clone(history, tmp_path):
    full = clone(history, tmp_path / "full", "t3")
    is_ancestor = git_ancestry(str(full))
    assert is_ancestor(history.sha["t1"], history.sha["t3"]) is True
    assert is_ancestor(history.sha["t3"], history.sha["t1"]) is False
    assert is_ancestor("f" * 40, history.sha["t3"]) is None  # unknown commit
    shallow = clone(history, tmp_path / "shallow", "t3", depth=1)
    git(shallow, "fetch", "-q", "--depth", "1", "origin", "tag", "t1")  # both commits, no path between
    assert git_ancestry(str(shallow))(history.sha["t1"], history.sha["t3"]) is None
    assert git_ancestry(str(tmp_path))(history.sha["t1"], history.sha["t3"]) is None  # not a repository


def test_compare_sources_rules_in_order():
    a, b = "a" * 40, "b" * 40
    old = {"commit": a, "committed_at": "2026-01-01T00:00:00Z"}
    new = {"commit": b, "committed_at": "2026-01-02T01:00:00+01:00"}
    assert compare_sources(new, old).rule == COMMITTER_TIME and compare_sources(new, old).older
    assert compare_sources(old, new).decision == "newer"
    assert compare_sources(old, {**new, "committed_at": "2026-01-01T01:00:00+01:00"}).decision == "unknown"
    assert compare_sources({**new, "ancestors": [a]}, {**old, "committed_at": "2027-01-01T00:00:00Z"}).rule == RECORDED_ANCESTRY
    assert compare_sources(new, old, ancestry=lambda x, y: False).decision == "diverged"
    assert compare_sources(new, old, ancestry=lambda x, y: None).rule == COMMITTER_TIME
    assert compare_sources(new, old, ancestry=lambda x, y: x == a).rule == GIT_ANCESTRY
    assert compare_sources({**new, "repository": "x/one"}, {**old, "repository": "x/two"}).decision == "unknown"
    assert compare_sources(old, old).decision == "same"
    assert compare_sources({}, old).decision == compare_sources(old, {}).decision == "unknown"
    assert compare_sources(new, {**old, "committed_at": "yesterday"}).rule == "no committer time"


def test_detect_source_in_github_actions_reads_the_checkout(history, tmp_path, monkeypatch):
    checkout = clone(history, tmp_path / "ws", "t2", depth=1)
    monkeypatch.setenv("GITHUB_SHA", history.sha["t2"])
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/site")
    src = detect_source(str(checkout))
    assert src["commit"] == history.sha["t2"] and src["committed_at"] == DATES["t2"] and src["shallow"] is True
    monkeypatch.setenv("GITHUB_SHA", "0" * 40)  # a step without the commit checked out: the id alone
    assert "committed_at" not in detect_source(str(checkout))


# --- the GitHub Action: a re-run of an old workflow -----------------------------------------------

def _shape(line: str) -> str:
    """An error line with ids and times masked, to compare the docs' example with a real one."""
    line = re.sub(r"\b[0-9a-f]{12,64}\b", "ID", line)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", "TIME", line)


def test_action_rerun_of_an_old_workflow_is_refused_as_the_docs_show(gh, history, tmp_path):  # noqa: F811
    target = tmp_path / "target"

    def run_at(tag, **inputs):
        if gh.workspace.exists():
            shutil.rmtree(gh.workspace)
        clone(history, gh.workspace, tag, depth=1)  # actions/checkout's default fetch-depth: 1
        gh.env["GITHUB_SHA"] = history.sha[tag]
        gh.event("push", {"head_commit": {"message": tag}})
        return gh(build_dir="site", target=str(target), **inputs)

    newer = run_at("t3")
    assert newer.code == 0, newer.log
    rerun = run_at("t2")
    assert rerun.code == 3 and rerun.outputs["exit-code"] == "3" and rerun.outputs["switched"] == "false"
    [annotation] = rerun.annotations("error")
    assert annotation.startswith("::error title=atomicsite publish failed (exit 3%3A conflict)::refusing to switch 'live'")
    assert f"by {COMMITTER_TIME}: {history.sha['t2'][:12]} committed {DATES['t2']}" in annotation
    assert atomicsite.status(str(target)).pointer["version"] == newer.outputs["version"]
    [documented] = [ln for ln in DOC.splitlines() if ln.startswith("::error title=atomicsite publish failed (exit 3")]
    assert _shape(documented) == _shape(annotation)
    forced = run_at("t2", allow_older="true")
    assert forced.code == 0 and forced.outputs["switched"] == "true", forced.log
