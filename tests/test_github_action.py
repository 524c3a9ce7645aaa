"""The GitHub Action: action.yml's own shell steps run locally, its inputs against the CLI, its linters.

``run_action`` plays the runner's part for a composite action: it evaluates the ``${{ }}``
expressions of action.yml, runs each ``run:`` step as Actions does (``bash --noprofile --norc -eo
pipefail``, a fresh ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` per step), and resolves the action's
outputs from the steps' outputs. Only the ``uses: actions/setup-python`` step (off by default) is not
run, and the install step finds its virtualenv ready (a script that runs this interpreter), so no test
downloads anything.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from atomicsite.report import human_bytes
import yaml
from typer.main import get_command

import atomicsite
from atomicsite import github_action as ga
from atomicsite.cli import app

from .github_standin import TOKEN, Server
from .helpers import site

ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
WORKFLOWS = sorted((ROOT / "docs" / "workflows").glob("*.yml"))
DOC = (ROOT / "docs" / "github-action.md").read_text()
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
RUN_ID = "4242"


# --- a local runner for action.yml ---------------------------------------------------------------

@dataclass
class ActionRun:
    code: int
    outputs: dict[str, str]
    log: str
    summary: str
    steps: dict[str, dict] = field(default_factory=dict)

    def annotations(self, kind: str) -> list[str]:
        return [line for line in self.log.splitlines() if line.startswith(f"::{kind}")]


def evaluate(text: str, context: dict) -> str:
    """``${{ a.b.c }}`` lookups only: anything fancier in action.yml fails here on purpose."""
    def one(m):
        value = context
        for part in m.group(1).split("."):
            value = value[part]
        return str(value)

    return EXPR.sub(one, str(text))


def parse_output_file(text: str) -> dict[str, str]:
    """The runner's reading of $GITHUB_OUTPUT: ``name=value`` lines and ``name<<DELIM`` blocks."""
    out, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delim = line.split("<<", 1)
            body = []
            for item in lines:
                if item == delim:
                    break
                body.append(item)
            else:
                raise AssertionError(f"output {name!r}: delimiter {delim!r} never closed")
            out[name] = "\n".join(body)
        elif line:
            name, value = line.split("=", 1)
            out[name] = value
    return out


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_", "INPUT_", "ATOMICSITE_"))}


def this_python(path: Path) -> None:
    """An executable at ``path`` that runs this very interpreter, environment included.

    Not a symlink: Python finds its virtualenv from the path it was started by (``pyvenv.cfg`` beside
    or above it), so a link to a venv's python elsewhere starts the bare base interpreter without the
    venv's packages. A script that execs ``sys.executable`` by its own path keeps the venv (and works
    the same for a system-wide or conda interpreter, which need no pyvenv.cfg).
    """
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    path.chmod(0o755)


@pytest.fixture
def github_api():
    """Our stand-in for the GitHub REST API's issue comment endpoints (tests/github_standin.py)."""
    with Server() as api:
        yield api


@pytest.fixture
def gh(tmp_path, github_api):
    """A workspace, a runner temp dir with the action's virtualenv already there, and GITHUB_* variables
    (GITHUB_API_URL pointing at the stand-in, and the job token it accepts)."""
    workspace, runner_temp, bindir = tmp_path / "workspace", tmp_path / "runner", tmp_path / "bin"
    for d in (workspace, runner_temp, bindir):
        d.mkdir()
    venv = runner_temp / "atomicsite-action"
    (venv / "bin").mkdir(parents=True)
    this_python(venv / "bin" / "python")
    this_python(bindir / "python3")  # what setup-python would put first on PATH
    # install.sh's marker: this checkout and this interpreter, so the install step is a no-op here
    interpreter = subprocess.run([str(bindir / "python3"), "-c", "import sys; print(sys.executable, sys.version.split()[0])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    (venv / ".installed-from").write_text(f"{ROOT} {interpreter}")
    env = {
        **clean_env(),
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_ACTIONS": "true", "GITHUB_ACTOR": "octocat", "GITHUB_REPOSITORY": "acme/site",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": RUN_ID, "GITHUB_RUN_NUMBER": "17",
        "GITHUB_WORKFLOW": "Deploy site", "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(runner_temp),
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "push", "GITHUB_API_URL": github_api.url,
    }
    return Runner(env=env, workspace=workspace, tmp=tmp_path, api=github_api)


@dataclass
class Runner:
    env: dict
    workspace: Path
    tmp: Path
    api: object = None
    runs: int = 0

    def event(self, name: str, payload: dict, **env) -> None:
        path = self.tmp / f"event-{name}.json"
        path.write_text(json.dumps(payload))
        self.env.update(GITHUB_EVENT_NAME=name, GITHUB_EVENT_PATH=str(path), **env)

    def __call__(self, **inputs) -> ActionRun:
        """Run action.yml with these inputs (``build_dir=`` for ``build-dir``), as a job step would."""
        given = {k.replace("_", "-"): v for k, v in inputs.items()}
        unknown = set(given) - set(ACTION["inputs"])
        assert not unknown, f"not inputs of action.yml: {unknown}"
        github = {"action_path": str(ROOT), "token": TOKEN}  # the job's github.token
        values = {name: given.get(name, evaluate(spec.get("default", ""), {"github": github}))
                  for name, spec in ACTION["inputs"].items()}
        context = {"inputs": values, "github": github, "steps": {}}
        code, log, summaries = 0, [], []
        for i, step in enumerate(ACTION["runs"]["steps"]):
            if "uses" in step:
                assert step["uses"].startswith("actions/setup-python@")
                assert step.get("if") == "inputs.python-version != ''" and not values["python-version"]
                continue
            self.runs += 1
            out_file, summary_file = self.tmp / f"out-{self.runs}-{i}", self.tmp / f"summary-{self.runs}-{i}"
            out_file.touch()
            summary_file.touch()
            script = self.tmp / f"step-{self.runs}-{i}.sh"
            script.write_text(step["run"])
            env = {**self.env, **{k: evaluate(v, context) for k, v in step.get("env", {}).items()},
                   "GITHUB_OUTPUT": str(out_file), "GITHUB_STEP_SUMMARY": str(summary_file)}
            assert step["shell"] == "bash"
            cwd = self.workspace / evaluate(step.get("working-directory", "."), context)
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd,
                                  env=env, capture_output=True, text=True, timeout=60)
            log.append(proc.stdout + proc.stderr)
            summaries.append(summary_file.read_text())
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": parse_output_file(out_file.read_text())}
            if proc.returncode != 0:
                code = proc.returncode
                break
        outputs = {}
        for name, spec in ACTION["outputs"].items():
            try:
                outputs[name] = evaluate(spec["value"], context)
            except KeyError:
                outputs[name] = ""  # the step that sets it never ran, as on a runner
        return ActionRun(code, outputs, "".join(log), "".join(summaries), context["steps"])


def test_the_runner_pythons_are_this_environment(tmp_path):
    """In a virtualenv, a conda env or a system install: what the action runs sees atomicsite and this prefix."""
    exe = tmp_path / "bin" / "python"
    exe.parent.mkdir()
    this_python(exe)
    probe = "import sys, atomicsite; print(sys.prefix); print(atomicsite.__file__)"
    prefix, module = subprocess.run([str(exe), "-c", probe], capture_output=True, text=True, check=True,
                                    env=clean_env()).stdout.splitlines()
    assert prefix == sys.prefix and Path(module) == Path(atomicsite.__file__)


def channel_status(target: Path, channel: str = "live"):
    return atomicsite.status(str(target), channel=channel)


# --- the action, run as a workflow would ---------------------------------------------------------

def test_publish_on_push_sets_outputs_summary_and_records_the_source(gh, tmp_path):
    gh.event("push", {"head_commit": {"message": "Fix the footer | again\n\nLonger body."}})
    build, target = site(tmp_path), tmp_path / "target"

    first = gh(build_dir=str(build), target=str(target))
    assert first.code == 0, first.log
    st = channel_status(target)
    assert first.outputs["version"] == st.pointer["version"]
    assert first.outputs | {"json": ""} == {
        "version": st.pointer["version"], "previous-version": "", "channel": "live", "live": "true",
        "switched": "true", "url": "", "exit-code": "0", "json": ""}
    assert json.loads(first.outputs["json"])["upload"] == {"files": 10, "bytes": st.manifest["bytes"]}
    assert st.manifest["source"] == {
        "commit": gh.env["GITHUB_SHA"], "ref": "refs/heads/main", "repository": "acme/site",
        "run_url": f"https://github.com/acme/site/actions/runs/{RUN_ID}"}
    assert st.manifest["message"] == "Fix the footer | again"
    assert st.pointer["by"] == "octocat (GitHub Actions)"
    assert f"`{first.outputs['version']}` is live on channel `live`" in first.summary
    assert f"| uploaded | 10 files, {human_bytes(st.manifest['bytes'])} |" in first.summary
    assert "| uploaded | 10 files, 1.8 kB |" in first.summary  # 1,786 bytes, decimal units as rich shows
    assert "| previous version | — |" in first.summary
    assert f"[run](https://github.com/acme/site/actions/runs/{RUN_ID})" in first.summary
    assert "Running: atomicsite publish" in first.log

    (build / "index.html").write_text("<h1>two</h1>")
    second = gh(build_dir=str(build), target=str(target), message="release 2")
    assert second.code == 0, second.log
    assert second.outputs["previous-version"] == first.outputs["version"] != second.outputs["version"]
    assert channel_status(target).manifest["message"] == "release 2"
    assert "| uploaded | 1 files, 12 B |" in second.summary
    # a local target uses the objects layout: unchanged contents are already stored, not copied
    assert "| skipped (already stored) | 9 files," in second.summary
    assert re.search(r"\| time \| \d+\.\d\d s \|", second.summary)

    again = gh(build_dir=str(build), target=str(target))
    assert again.outputs | {"json": ""} == second.outputs | {"previous-version": second.outputs["version"],
                                                              "switched": "false", "json": ""}
    assert "| skipped (already stored) | 10 files," in again.summary


def test_pull_request_previews_publish_to_pr_channel_and_cleanup_deletes_it(gh, tmp_path):
    build, target = site(tmp_path), tmp_path / "target"
    live = atomicsite.publish(build, str(target))
    (build / "index.html").write_text("<h1>preview</h1>")

    gh.event("pull_request", {"action": "synchronize", "number": 7,
                              "pull_request": {"number": 7, "title": "New header\n::warning::injected"}},
             GITHUB_REF="refs/pull/7/merge")
    preview = gh(build_dir=str(build), target=str(target))
    assert preview.code == 0, preview.log
    assert preview.outputs["channel"] == "pr-7" and preview.outputs["live"] == "true"
    assert channel_status(target, "pr-7").manifest["message"] == "PR #7: New header"
    assert channel_status(target, "pr-7").manifest["source"]["ref"] == "refs/pull/7/merge"
    assert channel_status(target).pointer["version"] == live.version  # live untouched
    assert not any(line.startswith("::warning::injected") for line in preview.log.splitlines())

    gh.event("pull_request", {"action": "closed", "number": 7, "pull_request": {"number": 7}})
    cleanup = gh(command="channel-delete", target=str(target))
    assert cleanup.code == 0, cleanup.log
    assert cleanup.outputs | {"json": ""} == {
        "version": preview.outputs["version"], "previous-version": "", "channel": "pr-7", "live": "false",
        "switched": "false", "url": "", "exit-code": "0", "json": ""}
    assert [c.channel for c in atomicsite.list_channels(str(target))] == ["live"]
    assert "Deleted channel `pr-7`" in cleanup.summary

    twice = gh(command="channel-delete", target=str(target))
    assert twice.code == 0 and twice.outputs["version"] == ""
    assert twice.annotations("notice") == ["::notice::channel 'pr-7' does not exist: nothing to delete."]
    assert "did not exist: nothing to delete" in twice.summary


def pr_event(gh, number: int, action: str = "synchronize") -> None:
    gh.event("pull_request", {"action": action, "number": number, "pull_request": {"number": number, "title": "t"}},
             GITHUB_REF=f"refs/pull/{number}/merge")


def test_the_pull_request_gets_one_preview_comment_updated_on_each_push_and_on_close(gh, tmp_path):
    (gh.workspace / "atomicsite.toml").write_text('preview_url = "https://{channel}.preview.example.com"\n')
    build, target = site(tmp_path), tmp_path / "target"
    for i in range(140):  # other people's comments: ours lands on the second page of 100
        gh.api.add(7, f"looks good {i}")
    pr_event(gh, 7, "opened")

    first = gh(build_dir=str(build), target=str(target), expires="7d")
    assert first.code == 0, first.log
    assert first.outputs["url"] == "https://pr-7.preview.example.com"
    ours = [c for c in gh.api.comments[7] if c["body"].startswith("<!-- atomicsite-preview:pr-7 -->")]
    assert len(ours) == 1 and ours[0]["user"]["login"] == "github-actions[bot]"
    body = ours[0]["body"]
    assert "**Preview:** https://pr-7.preview.example.com" in body
    assert f"| version | `{first.outputs['version']}` |" in body and "| commit | `0123456789ab` |" in body
    assert "| expires |" in body and f"actions/runs/{RUN_ID}" in body
    assert [(m, p) for m, p in gh.api.calls()] == [
        ("GET", "/repos/acme/site/issues/7/comments"), ("GET", "/repos/acme/site/issues/7/comments"),
        ("POST", "/repos/acme/site/issues/7/comments")]
    assert [r.query.get("page", ["1"]) for r in gh.api.requests[:2]] == [["1"], ["2"]]
    assert any(line.startswith("::notice::created the preview comment on PR #7: https://github.com/")
               for line in first.log.splitlines())
    assert "| preview | https://pr-7.preview.example.com |" in first.summary

    (build / "index.html").write_text("<h1>second push</h1>")
    gh.api.requests.clear()
    second = gh(build_dir=str(build), target=str(target), expires="7d")
    assert second.code == 0, second.log
    assert [m for m, _ in gh.api.calls()] == ["GET", "GET", "PATCH"]
    assert gh.api.requests[-1].path == f"/repos/acme/site/issues/comments/{ours[0]['id']}"
    assert gh.api.requests[-1].body == {"body": ours[0]["body"]}
    assert len([c for c in gh.api.comments[7] if "atomicsite-preview" in c["body"]]) == 1
    assert f"`{second.outputs['version']}`" in ours[0]["body"] != body
    assert len(gh.api.comments[7]) == 141  # nobody else's comment was touched or added

    pr_event(gh, 7, "closed")
    closed = gh(command="channel-delete", target=str(target))
    assert closed.code == 0, closed.log
    assert "was deleted when this pull request closed" in ours[0]["body"]
    assert f"(it served `{second.outputs['version']}`)" in ours[0]["body"]

    for r in gh.api.requests:  # every request as GitHub's REST docs ask for it
        h = {k.lower(): v for k, v in r.headers.items()}
        assert h["authorization"] == f"Bearer {TOKEN}" and h["accept"] == "application/vnd.github+json"
        assert h["x-github-api-version"] == "2022-11-28" and h["user-agent"]
        if r.method != "GET":
            assert h["content-type"] == "application/json" and set(r.body) == {"body"}
    for run in (first, second, closed):
        assert TOKEN not in run.log + run.summary + json.dumps(run.outputs) + json.dumps(run.steps)


def test_closing_a_pr_that_has_no_comment_posts_none(gh, tmp_path):
    target = tmp_path / "target"
    atomicsite.publish(site(tmp_path), str(target), channel="pr-3")
    pr_event(gh, 3, "closed")
    closed = gh(command="channel-delete", target=str(target))
    assert closed.code == 0, closed.log
    assert [m for m, _ in gh.api.calls()] == ["GET"] and 3 not in gh.api.comments


def test_a_comment_github_refuses_is_a_warning_and_the_deploy_still_succeeds(gh, tmp_path):
    gh.api.fail_with = 403  # the job has no pull-requests: write
    pr_event(gh, 4)
    result = gh(build_dir=str(site(tmp_path)), target=str(tmp_path / "target"))
    assert result.code == 0 and result.outputs["live"] == "true", result.log
    [warning] = result.annotations("warning")
    assert "HTTP 403" in warning and "pull-requests: write" in warning


def test_no_comment_outside_pull_requests_or_when_turned_off(gh, tmp_path):
    build, target = site(tmp_path), tmp_path / "target"
    assert gh(build_dir=str(build), target=str(target)).code == 0  # a push
    pr_event(gh, 5)
    assert gh(build_dir=str(build), target=str(target), comment="false").code == 0
    assert gh(build_dir=str(build), target=str(target), args="--dry-run").code == 0
    assert gh.api.requests == []
    assert gh(build_dir=str(build), target=str(target), comment="maybe").code == 2


def test_rollback_pin_promote_from_a_dispatch_job(gh, tmp_path):
    build, target = site(tmp_path), tmp_path / "target"
    one = atomicsite.publish(build, str(target)).version
    (build / "index.html").write_text("two")
    two = atomicsite.publish(build, str(target)).version
    gh.event("workflow_dispatch", {"inputs": {"action": "rollback"}}, GITHUB_WORKFLOW="Roll back or pin site")

    back = gh(command="rollback", version=one[:6], target=str(target))
    assert back.code == 0, back.log
    assert (back.outputs["version"], back.outputs["previous-version"], back.outputs["live"],
            back.outputs["switched"]) == (one, two, "true", "true")
    assert channel_status(target).pointer["message"] == "Roll back or pin site #17 (workflow_dispatch)"
    assert "| switched | yes |" in back.summary and "| pinned | no |" in back.summary

    pin = gh(command="pin", version=two[:8], target=str(target), message="incident 42")
    assert pin.code == 0 and pin.outputs["version"] == two
    assert channel_status(target).pointer["pinned"] is True
    assert f"`{two}` is live and pinned on channel `live`" in pin.summary

    (build / "index.html").write_text("three")
    gh.event("push", {"head_commit": {"message": "three"}})
    held = gh(build_dir=str(build), target=str(target))
    assert held.code == 0
    assert (held.outputs["live"], held.outputs["switched"], held.outputs["previous-version"]) == ("false", "false", two)
    assert held.annotations("notice") and "is committed but not live" in held.summary
    three = held.outputs["version"]

    refused = gh(command="rollback", target=str(target))
    assert refused.code == 3 and refused.outputs["exit-code"] == "3"
    [error] = refused.annotations("error")
    assert error.startswith("::error title=atomicsite rollback failed (exit 3%3A conflict)::")
    assert "rollback failed (exit 3: conflict)" in refused.summary

    atomicsite.unpin(str(target))
    promoted = gh(command="promote", version=three, target=str(target))
    assert (promoted.code, promoted.outputs["version"], promoted.outputs["previous-version"]) == (0, three, two)
    assert channel_status(target).pointer["version"] == three


@pytest.mark.parametrize("inputs, code, error", [
    ({"build_dir": "missing"}, 2, "::error title=atomicsite publish failed (exit 2%3A usage)::build dir"),
    ({"build_dir": ".", "args": "--bogus"}, 2, "::error title=atomicsite publish failed (exit 2%3A usage)::No such option: --bogus."),
    ({"command": "promote", "version": "ffff"}, 4, "::error title=atomicsite promote failed (exit 4%3A not found)::no version matches"),
    ({"command": "deploy"}, 2, "::error title=atomicsite action%3A bad input::input 'command' is 'deploy'"),
])
def test_failures_fail_the_step_with_the_cli_exit_code_and_one_annotation(gh, tmp_path, inputs, code, error):
    (gh.workspace / "index.html").write_text("hi")
    result = gh(target=str(tmp_path / "target"), **inputs)
    assert result.code == code, result.log
    [annotation] = result.annotations("error")
    assert annotation.startswith(error), annotation
    assert "\n" not in annotation


@pytest.mark.parametrize("inputs, error", [
    ({"build-dir": "dist", "promote": "maybe"}, "input 'promote' is 'maybe'. Use 'true' or 'false'."),
    ({"build-dir": "dist", "allow-older": "yes"}, "input 'allow-older' is 'yes'. Use 'true' or 'false'."),
    ({"command": "pin"}, "input 'version' is required to pin."),
    ({"command": "publish"}, "input 'build-dir' is required to publish."),
    ({"build-dir": "dist", "args": "'unbalanced"}, "input 'args' cannot be split: No closing quotation."),
])
def test_bad_inputs_stop_before_the_cli_runs(tmp_path, capsys, inputs, error):
    env = {ga.env_name(k): v for k, v in inputs.items()} | {"GITHUB_OUTPUT": str(tmp_path / "out")}
    assert ga.main(env) == 2
    assert capsys.readouterr().out.startswith(f"::error title=atomicsite action%3A bad input::{error}")
    assert not (tmp_path / "out").exists()


def test_failure_still_writes_outputs_and_summary(gh, tmp_path):
    result = gh(build_dir="nope", target=str(tmp_path / "target"))
    assert result.outputs["exit-code"] == "2" and result.outputs["channel"] == "live"
    assert result.outputs["version"] == "" and result.outputs["live"] == "false"
    assert result.summary.startswith("### atomicsite publish failed (exit 2: usage)\n\n> build dir ")


def test_inputs_a_command_ignores_are_warned_about(gh, tmp_path):
    build, target = site(tmp_path), tmp_path / "target"
    atomicsite.publish(build, str(target))
    result = gh(command="unpin", build_dir=str(build), promote="false", version="abcd", target=str(target))
    assert result.code == 0
    assert sorted(result.annotations("warning")) == [
        "::warning::input 'build-dir' is ignored by unpin", "::warning::input 'promote' is ignored by unpin",
        "::warning::input 'version' is ignored by unpin"]


def test_working_directory_and_config_file_are_honoured(gh, tmp_path):
    sub = gh.workspace / "web"
    site(sub.parent, dest="web/dist")
    (sub / "atomicsite.toml").write_text(f'target = "{tmp_path / "from-config"}"\n')
    result = gh(build_dir="dist", working_directory="web", promote="false")
    assert result.code == 0, result.log
    assert result.outputs["live"] == "false" and result.outputs["switched"] == "false"
    assert atomicsite.versions(str(tmp_path / "from-config"))[0].version == result.outputs["version"]


def test_no_secret_from_the_environment_reaches_the_log_outputs_or_summary(gh, tmp_path):
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    gh.env.update(AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=secret + "token", GOOGLE_GHA_CREDS_PATH=secret)
    ok = gh(build_dir=str(site(tmp_path)), target=str(tmp_path / "target"))
    failed = gh(command="rollback", target=str(tmp_path / "target"))
    assert ok.code == 0 and failed.code == 4
    for run in (ok, failed):
        assert secret not in run.log + run.summary + json.dumps(run.outputs) + json.dumps(run.steps)


def test_untrusted_text_cannot_become_a_workflow_command(gh, tmp_path):
    """A message or path with a newline (say, from a PR body) stays data in the log."""
    result = gh(build_dir="nope\n::warning::from-path", message="ok\n::warning::from-message",
                target=str(tmp_path / "target"))
    assert result.code == 2
    live_lines, stopped = [], None
    for line in result.log.splitlines():  # what the runner would interpret
        if stopped:
            stopped = None if line == f"::{stopped}::" else stopped
        elif line.startswith("::stop-commands::"):
            stopped = line.removeprefix("::stop-commands::")
        else:
            live_lines.append(line)
    assert stopped is None
    assert [line.split("::")[1].split()[0] for line in live_lines if line.startswith("::")] == ["group", "endgroup", "error"]
    assert "from-path" in result.annotations("error")[0] and "%0A" in result.annotations("error")[0]


def test_install_step_refuses_an_old_python_with_advice(gh, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    fake = old / "python3"
    fake.write_text('#!/bin/sh\ncase "$2" in *print*) echo 3.10 ;; *) exit 1 ;; esac\n')
    fake.chmod(0o755)
    gh.env["PATH"] = f"{old}{os.pathsep}{gh.env['PATH']}"
    result = gh(build_dir=".")
    assert result.code == 2 and "version" not in result.steps.get("run", {}).get("outputs", {})
    [error] = result.annotations("error")
    assert error.startswith(f"::error title=atomicsite needs Python 3.11+::{fake} is Python 3.10.")
    assert "python-version" in error


# --- inputs against the CLI: they cannot drift --------------------------------------------------

def parse_cli(argv: list[str]) -> tuple[list[str], dict]:
    """Parse argv with the CLI's own parser (no invocation): the command path and its parameters."""
    cmd = get_command(app)
    ctx = cmd.make_context("atomicsite", list(argv))
    path = []
    while hasattr(cmd, "resolve_command"):
        protected = ctx.__dict__.get("_protected_args", ctx.__dict__.get("protected_args", []))
        name, cmd, rest = cmd.resolve_command(ctx, [*protected, *ctx.args])
        path.append(name)
        ctx = cmd.make_context(name, rest, parent=ctx)
    return path, ctx.params


# Each command with every input it uses set, and where each value must land in the parsed CLI.
SCENARIOS = [
    ("publish", {"build-dir": "web/dist", "target": "s3://b/site", "channel": "pr-7", "promote": "false",
                 "message": "two words", "expires": "7d", "args": "--concurrency 3 --verify-url 'https://x.test/a b'",
                 "allow-older": "true"},
     ["publish"], {"build_dir": Path("web/dist"), "target": "s3://b/site", "channel": "pr-7", "no_promote": True,
                   "message": "two words", "expires": "7d", "concurrency": 3, "verify_url": ["https://x.test/a b"],
                   "allow_older": True}),
    ("promote", {"version": "3f9a1c2b", "target": "gs://b/p", "channel": "staging", "message": "m", "args": "--repair",
                 "allow-older": "true"},
     ["promote"], {"version": "3f9a1c2b", "target": "gs://b/p", "channel": "staging", "message": "m", "repair": True,
                   "allow_older": True}),
    ("pin", {"version": "previous", "message": "incident"}, ["pin"], {"version": "previous", "message": "incident"}),
    ("unpin", {"channel": "live", "message": "over"}, ["unpin"], {"channel": "live", "message": "over"}),
    ("rollback", {"version": "abcd12", "channel": "live"}, ["rollback"], {"to": "abcd12", "channel": "live"}),
    ("channel-delete", {"channel": "pr-9", "target": "file:///t"}, ["channel", "delete"], {"name": "pr-9", "target": "file:///t"}),
]


@pytest.mark.parametrize("command, inputs, path, expected", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_every_input_lands_on_a_real_cli_option(command, inputs, path, expected):
    env = {ga.env_name(k): v for k, v in {"command": command, **inputs}.items()}
    argv = ga.command_line(ga.ActionInputs.from_env(env), ga.GitHubContext())
    got_path, params = parse_cli(argv)
    assert got_path == path and params["json_output"] is True
    assert {k: params[k] for k in expected} == expected


def test_every_action_input_is_mapped_and_every_mapped_input_is_tested():
    inputs = set(ACTION["inputs"])
    assert inputs == set(ga.CLI_INPUTS) | set(ga.ACTION_ONLY_INPUTS) | set(ga.COMMENT_INPUTS)
    assert not set(ga.CLI_INPUTS) & set(ga.ACTION_ONLY_INPUTS)
    assert not (set(ga.CLI_INPUTS) | set(ga.ACTION_ONLY_INPUTS)) & set(ga.COMMENT_INPUTS)
    tested = {"command"} | {name for _, given, _, _ in SCENARIOS for name in given}
    assert tested == set(ga.CLI_INPUTS)
    assert {s[0] for s in SCENARIOS} == set(ga.COMMANDS)
    assert ACTION["inputs"]["command"]["default"] == "publish"
    [run_step] = [s for s in ACTION["runs"]["steps"] if s.get("id") == "run"]
    passed = {k: v for k, v in run_step["env"].items() if k.startswith("INPUT_")}
    assert passed == {ga.env_name(name): f"${{{{ inputs.{name} }}}}" for name in [*ga.CLI_INPUTS, *ga.COMMENT_INPUTS]}
    assert ACTION["inputs"]["github-token"]["default"] == "${{ github.token }}"
    text = (ROOT / "action.yml").read_text()
    for name in ga.ACTION_ONLY_INPUTS:  # used by action.yml itself, not by the module
        assert f"inputs.{name}" in text


def test_no_expression_is_interpolated_into_a_run_script():
    for step in ACTION["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]


def test_action_outputs_are_the_run_steps_outputs():
    for name, spec in ACTION["outputs"].items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


# --- pure parts -----------------------------------------------------------------------------------

def test_outputs_file_is_multiline_safe(tmp_path):
    path = tmp_path / "out"
    value = 'line one\nname<<EOF\nEOF\nghadelimiter_x\n{"a": 1}'
    ga.write_outputs(str(path), {"json": value, "version": "abc", "empty": ""})
    assert parse_output_file(path.read_text()) == {"json": value, "version": "abc", "empty": ""}


def test_workflow_commands_escape_what_would_end_or_split_them():
    assert ga.workflow_command("error", "50% done\nsecond", title="a: b, c") == "::error title=a%3A b%2C c::50%25 done%0Asecond"


@pytest.mark.parametrize("event_name, payload, ref, channel, message", [
    ("push", {"head_commit": {"message": "  First line  \nsecond"}}, "refs/heads/main", "live", "First line"),
    ("push", {}, "refs/heads/main", "live", "Deploy site #3 (push)"),
    ("pull_request", {"number": 12, "pull_request": {"number": 12, "title": "Add docs"}}, "", "pr-12", "PR #12: Add docs"),
    ("pull_request_target", {"number": 5}, "", "pr-5", "PR #5"),
    ("pull_request", {}, "refs/pull/31/merge", "pr-31", "PR #31"),
    ("workflow_dispatch", {}, "refs/heads/main", "live", "Deploy site #3 (workflow_dispatch)"),
])
def test_defaults_from_the_github_context(tmp_path, event_name, payload, ref, channel, message):
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    ctx = ga.GitHubContext.from_env({"GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(path), "GITHUB_REF": ref,
                                     "GITHUB_WORKFLOW": "Deploy site", "GITHUB_RUN_NUMBER": "3"})
    assert (ctx.default_channel(), ctx.default_message()) == (channel, message)


def test_summary_cells_cannot_break_the_table():
    run = ga.CliRun(0, {"channel": "live", "version": "v1", "before": None, "switched": True, "pinned": False,
                        "note": "a | b\n<script>", "after": []}, "")
    text = ga.summary_markdown("promote", "", ga.step_outputs("promote", "live", run), run, ga.GitHubContext())
    assert "| note | a \\| b &lt;script&gt; |" in text


# --- docs and example workflows -----------------------------------------------------------------

def test_docs_cover_every_input_output_command_and_workflow():
    for name in [*ACTION["inputs"], *ACTION["outputs"], *ga.COMMANDS]:
        assert f"`{name}`" in DOC, name
    for wf in WORKFLOWS:
        assert f"(workflows/{wf.name})" in DOC, wf.name
    assert {wf.name for wf in WORKFLOWS} >= {"deploy.yml", "preview.yml", "rollback.yml"}


def load_workflow(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def test_example_workflows_serialise_writers_of_one_channel():
    groups = {}
    for wf in WORKFLOWS:
        doc = load_workflow(wf)
        assert doc["concurrency"]["cancel-in-progress"] is False, wf.name
        # preview.yml also writes the pull request comment (issue comments need pull-requests: write)
        extra = {"pull-requests": "write"} if wf.name == "preview.yml" else {}
        assert doc["permissions"] == {"contents": "read", "id-token": "write", **extra}, wf.name
        groups[wf.name] = doc["concurrency"]["group"]
    assert groups["deploy.yml"] == groups["deploy-gcs.yml"] == "atomicsite-live"
    assert evaluate(groups["rollback.yml"], {"inputs": {"channel": "live"}}) == "atomicsite-live"
    pr = {"github": {"event": {"pull_request": {"number": 7}}}}
    assert evaluate(groups["preview.yml"], pr) == "atomicsite-pr-7"
    preview = load_workflow(ROOT / "docs/workflows/preview.yml")
    steps = [s for job in preview["jobs"].values() for s in job["steps"] if "atomicsite" in s.get("uses", "")]
    assert {evaluate(s["with"]["channel"], pr) for s in steps} == {"atomicsite-pr-7".removeprefix("atomicsite-")}
    assert [s["with"].get("command", "publish") for s in steps] == ["publish", "channel-delete"]
    rollback = load_workflow(ROOT / "docs/workflows/rollback.yml")
    assert set(rollback["on"]["workflow_dispatch"]["inputs"]["action"]["options"]) <= set(ga.COMMANDS)


# --- linters --------------------------------------------------------------------------------------

def tool(name: str) -> str:
    path = shutil.which(name, path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if not path:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' brings it)")
    return path


def test_action_and_workflows_match_githubs_schemas():
    check = tool("check-jsonschema")
    for schema, files in (("vendor.github-actions", [ROOT / "action.yml"]), ("vendor.github-workflows", WORKFLOWS)):
        proc = subprocess.run([check, "--builtin-schema", schema, *map(str, files)], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def actionlint(cwd: Path, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("actionlint"), "-no-color", "-oneline", *map(str, files)], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_workflows_pass_actionlint():
    proc = actionlint(ROOT, *WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_pass_actionlint_against_this_action_yml(tmp_path):
    """With `uses: ./`, actionlint checks every `with:` input and `outputs.` read against action.yml."""
    (tmp_path / ".git").mkdir()
    wf_dir = tmp_path / ".github" / "workflows"
    wf_dir.mkdir(parents=True)
    shutil.copy(ROOT / "action.yml", tmp_path / "action.yml")
    for wf in WORKFLOWS:
        text = wf.read_text()
        assert "uses: your-org/atomicsite@v1" in text, wf.name
        (wf_dir / wf.name).write_text(text.replace("your-org/atomicsite@v1", "./"))
    proc = actionlint(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = wf_dir / "deploy.yml"
    broken.write_text(broken.read_text().replace("build-dir:", "build-folder:"))
    proc = actionlint(tmp_path)
    assert proc.returncode == 1 and 'input "build-folder" is not defined in action "atomicsite"' in proc.stdout


def test_install_script_passes_shellcheck():
    proc = subprocess.run([tool("shellcheck"), str(ROOT / "action" / "install.sh")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("event_name, event", [
    ("pull_request_review", {"pull_request": {"number": 7}}),
    ("pull_request_review_comment", {"pull_request": {"number": 7}}),
    ("issue_comment", {"issue": {"number": 7, "pull_request": {"url": "https://api.github.com/x"}}}),
])
def test_every_pull_request_event_defaults_to_the_pr_channel(event_name, event):
    from atomicsite.github_action import GitHubContext

    assert GitHubContext(event_name=event_name, event=event).default_channel() == "pr-7"


def test_a_comment_on_a_plain_issue_is_not_a_pr():
    from atomicsite.github_action import GitHubContext

    assert GitHubContext(event_name="issue_comment", event={"issue": {"number": 3}}).default_channel() == "live"
