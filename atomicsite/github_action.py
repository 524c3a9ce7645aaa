"""Run atomicsite as a GitHub Actions step: ``python -m atomicsite.github_action``.

The composite action (``action.yml`` at the repository root) hands its inputs over as ``INPUT_*``
environment variables, never by interpolating them into a script. This module turns them into one
``atomicsite`` command line, runs the real CLI as a subprocess with ``--json``, and reports back to
the workflow: step outputs in ``$GITHUB_OUTPUT``, a Markdown table in ``$GITHUB_STEP_SUMMARY``, and on
failure a ``::error::`` annotation and the CLI's own exit code. On pull request events it keeps one
comment on the PR with the preview's URL and version (:mod:`atomicsite.pr_comment`).
docs/github-action.md documents it.

Example, outside Actions (outputs and summary are skipped when their files are not set)::

    INPUT_BUILD_DIR=dist INPUT_TARGET=/tmp/site python -m atomicsite.github_action
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .report import human_bytes

COMMANDS = ("publish", "promote", "pin", "unpin", "rollback", "channel-delete")

# Every action input that reaches the CLI, and where. tests/test_github_action.py parses what
# command_line() builds with the CLI's own parser, so an input that stops matching an option fails it.
CLI_INPUTS = {
    "command": "the subcommand (channel-delete is 'channel delete NAME')",
    "build-dir": "publish BUILD_DIR",
    "target": "--target",
    "channel": "--channel (channel-delete: NAME)",
    "promote": "publish --no-promote when 'false'",
    "message": "--message",
    "version": "promote/pin VERSION, rollback --to",
    "expires": "publish --expires",
    "args": "appended verbatim (shell-like quoting)",
    "allow-older": "publish/promote --allow-older when 'true'",
}
# Inputs this module uses itself, after the CLI ran (never passed to the CLI).
COMMENT_INPUTS = {
    "comment": "'false' turns off the pull request comment",
    "github-token": "the token the comment is written with (default: the job's github.token)",
}
# Inputs that shape the step rather than the command line (used by action.yml itself).
ACTION_ONLY_INPUTS = {
    "python-version": "runs actions/setup-python first when set",
    "working-directory": "the directory atomicsite runs in (config file lookup, relative paths)",
}
# Which commands each input means something to; given to another one it is ignored with a warning.
APPLIES_TO = {
    "build-dir": {"publish"},
    "promote": {"publish"},
    "version": {"promote", "pin", "rollback"},
    "message": {"publish", "promote", "pin", "unpin", "rollback"},
    "allow-older": {"publish", "promote"},
    "expires": {"publish"},
}
EXIT_NAMES = {1: "error", 2: "usage", 3: "conflict", 4: "not found", 5: "integrity", 6: "access",
              7: "health check failed", 8: "broken references", 130: "interrupted"}
PR_EVENTS = ("pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment")


def env_name(input_name: str) -> str:
    """``build-dir`` → ``INPUT_BUILD_DIR``: the variable action.yml sets for an input."""
    return "INPUT_" + input_name.upper().replace("-", "_")


@dataclass(frozen=True)
class GitHubContext:
    """What the runner tells every step: the event, the commit, the run."""

    event_name: str = ""
    event: dict = field(default_factory=dict)
    ref: str = ""
    sha: str = ""
    workflow: str = ""
    run_number: str = ""
    run_url: str = ""
    repository: str = ""
    api_url: str = "https://api.github.com"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubContext:
        event = {}
        if env.get("GITHUB_EVENT_PATH"):
            try:
                event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                event = {}  # the defaults below fall back to GITHUB_REF and the run number
        run_url = ""
        if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
            server = env.get("GITHUB_SERVER_URL", "https://github.com")
            run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        return cls(event_name=env.get("GITHUB_EVENT_NAME", ""), event=event if isinstance(event, dict) else {},
                   ref=env.get("GITHUB_REF", ""), sha=env.get("GITHUB_SHA", ""),
                   workflow=env.get("GITHUB_WORKFLOW", ""), run_number=env.get("GITHUB_RUN_NUMBER", ""),
                   run_url=run_url, repository=env.get("GITHUB_REPOSITORY", ""),
                   api_url=env.get("GITHUB_API_URL") or "https://api.github.com")

    @property
    def pr_number(self) -> str | None:
        issue = self.event.get("issue") or {}
        if self.event_name == "issue_comment" and issue.get("pull_request"):
            return str(issue["number"]) if issue.get("number") else None  # a comment on a PR (ChatOps)
        if self.event_name not in PR_EVENTS:
            return None
        number = (self.event.get("pull_request") or {}).get("number") or self.event.get("number")
        if not number and self.ref.startswith("refs/pull/"):
            number = self.ref.split("/")[2]  # refs/pull/<n>/merge
        return str(number) if number else None

    def default_channel(self) -> str:
        """``pr-<number>`` on pull request events, so a PR can never publish to ``live`` by default."""
        return f"pr-{self.pr_number}" if self.pr_number else "live"

    def default_message(self) -> str | None:
        if self.event_name == "push":
            head = (self.event.get("head_commit") or {}).get("message") or ""
            if head.strip():
                return _one_line(head)
        if self.pr_number:
            title = (self.event.get("pull_request") or {}).get("title") or ""
            return _one_line(f"PR #{self.pr_number}: {title}" if title.strip() else f"PR #{self.pr_number}")
        if self.workflow:
            run = f" #{self.run_number}" if self.run_number else ""
            return _one_line(f"{self.workflow}{run} ({self.event_name or 'run'})")
        return None


def _one_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class ActionInputs:
    """The action's inputs, validated once. Empty strings mean "not given", as in Actions."""

    command: str = "publish"
    build_dir: str = ""
    target: str = ""
    channel: str = ""
    promote: bool = True
    message: str = ""
    version: str = ""
    expires: str = ""
    args: tuple[str, ...] = ()
    comment: bool = True
    github_token: str = ""
    warnings: tuple[str, ...] = ()
    allow_older: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ActionInputs:
        get = {name: env.get(env_name(name), "").strip() for name in CLI_INPUTS}
        command = get["command"].lower() or "publish"
        if command not in COMMANDS:
            raise UsageError(f"input 'command' is {command!r}", hint=f"Use one of: {', '.join(COMMANDS)}.")
        promote_text = get["promote"].lower() or "true"
        if promote_text not in ("true", "false"):
            raise UsageError(f"input 'promote' is {get['promote']!r}", hint="Use 'true' or 'false'.")
        allow_older_text = get["allow-older"].lower() or "false"
        if allow_older_text not in ("true", "false"):
            raise UsageError(f"input 'allow-older' is {get['allow-older']!r}", hint="Use 'true' or 'false'.")
        try:
            args = tuple(shlex.split(env.get(env_name("args"), "")))
        except ValueError as exc:
            raise UsageError(f"input 'args' cannot be split: {exc}", hint="Balance its quotes.") from None
        if command == "publish" and not get["build-dir"]:
            raise UsageError("input 'build-dir' is required to publish", hint="Set build-dir: to your build folder (e.g. dist).")
        comment_text = env.get(env_name("comment"), "").strip().lower() or "true"
        if comment_text not in ("true", "false"):
            raise UsageError(f"input 'comment' is {comment_text!r}", hint="Use 'true' or 'false'.")
        if command in ("promote", "pin") and not get["version"]:
            raise UsageError(f"input 'version' is required to {command}", hint="Give an id, a 4+ character prefix, or 'previous'.")
        given = {"build-dir": bool(get["build-dir"]), "promote": promote_text == "false",
                 "version": bool(get["version"]), "message": bool(get["message"]), "expires": bool(get["expires"]),
                 "allow-older": allow_older_text == "true"}
        warnings = tuple(f"input '{name}' is ignored by {command}" for name, on in given.items()
                         if on and command not in APPLIES_TO[name])
        return cls(command=command, build_dir=get["build-dir"], target=get["target"], channel=get["channel"],
                   promote=promote_text == "true", message=get["message"], version=get["version"],
                   expires=get["expires"], args=args, comment=comment_text == "true",
                   github_token=env.get(env_name("github-token"), "").strip(), warnings=warnings,
                   allow_older=allow_older_text == "true")


def command_line(inputs: ActionInputs, ctx: GitHubContext) -> list[str]:
    """The ``atomicsite`` arguments for these inputs (without the program name), always with ``--json``."""
    channel = inputs.channel or ctx.default_channel()
    message = inputs.message or ctx.default_message()
    cmd = inputs.command
    if cmd == "channel-delete":
        argv = ["channel", "delete", channel]
    else:
        argv = [cmd]
        if cmd == "publish":
            argv.append(inputs.build_dir)
        elif cmd in ("promote", "pin"):
            argv.append(inputs.version)
        elif cmd == "rollback" and inputs.version:
            argv += ["--to", inputs.version]
        argv += ["--channel", channel]
        if cmd == "publish" and not inputs.promote:
            argv.append("--no-promote")
        if cmd in APPLIES_TO["allow-older"] and inputs.allow_older:
            argv.append("--allow-older")
        if cmd == "publish" and inputs.expires:
            argv += ["--expires", inputs.expires]
        if message:
            argv += ["--message", message]
    if inputs.target:
        argv += ["--target", inputs.target]
    return [*argv, *inputs.args, "--json"]


@dataclass(frozen=True)
class CliRun:
    """One finished CLI run: its exit code, its JSON document (None if it printed none), its stderr."""

    code: int
    doc: dict | list | None
    stderr: str

    @property
    def error_line(self) -> str:
        """The CLI's one-line error: from its JSON error document, else the last 'Error:' line click printed."""
        if isinstance(self.doc, dict) and "message" in self.doc:
            return " ".join(p for p in (self.doc.get("message"), self.doc.get("hint")) if p)
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.lower().startswith("error")]
        return (errors or lines or [f"atomicsite exited {self.code} without a message"])[-1]


def run_cli(argv: list[str], env: Mapping[str, str] | None = None) -> CliRun:
    proc = subprocess.run([sys.executable, "-m", "atomicsite", *argv], capture_output=True, text=True,
                          env=dict(env) if env is not None else None)
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return CliRun(proc.returncode, doc, proc.stderr)


def step_outputs(command: str, channel: str, run: CliRun) -> dict[str, str]:
    """The action's outputs. ``live`` is whether the channel serves ``version`` when the step ends."""
    d = run.doc if isinstance(run.doc, dict) else {}
    out = {"channel": channel, "version": "", "previous-version": "", "live": "false", "switched": "false",
           "url": "", "exit-code": str(run.code), "json": json.dumps(run.doc, indent=2, sort_keys=True) if run.doc is not None else ""}
    if run.code != 0:
        return out
    if command == "publish":
        out.update(version=d["version"], channel=d["channel"], **{"previous-version": d.get("live_before") or ""},
                   live=_bool(d.get("live") == d["version"] and not d.get("dry_run")), switched=_bool(d.get("switched")),
                   url=d.get("url") or "")
    elif command == "channel-delete":
        out.update(version=d.get("version") or "", channel=d.get("deleted") or channel)
    else:
        out.update(version=d["version"], channel=d["channel"], **{"previous-version": d.get("before") or ""},
                   live="true", switched=_bool(d.get("switched")))
    return out


def _bool(value) -> str:
    return "true" if value else "false"


def summary_markdown(command: str, target: str, outputs: Mapping[str, str], run: CliRun, ctx: GitHubContext) -> str:
    """The job summary: what happened, in a two-column table."""
    d = run.doc if isinstance(run.doc, dict) else {}
    title = f"atomicsite {command.replace('-', ' ')}"
    channel, version = outputs["channel"], outputs["version"]
    if run.code != 0:
        name = EXIT_NAMES.get(run.code, "error")
        text = f"### {title} failed (exit {run.code}: {name})\n\n> {_cell(run.error_line)}\n"
        findings = (d.get("links") or {}).get("findings") or []
        if findings:  # the link gate refused the build: say which page loads which missing file
            text += "\n" + "".join(f"- {f['level']}: {_code(f['page'])} → {_code(f['ref'])}\n" for f in findings[:20])
            text += f"- … and {len(findings) - 20} more\n" if len(findings) > 20 else ""
        return text
    if command == "channel-delete":
        head = (f"Deleted channel {_code(channel)} (it served {_code(version)}); its versions stay until "
                "`atomicsite prune`." if version else f"Channel {_code(channel)} did not exist: nothing to delete.")
        return f"### {title}\n\n{head}\n"
    rows = [("target", _code(d.get("target") or target or "(configured default)")), ("channel", _code(channel))]
    rows += [("version", _code(version)), ("previous version", _code(outputs["previous-version"]) or "—")]
    if command == "publish":
        if d.get("dry_run"):
            state = "was planned (dry run: nothing was written)"
        else:
            state = "is live" if outputs["live"] == "true" else "is committed but not live"
        if outputs.get("url"):
            rows.append(("preview", _cell(outputs["url"])))
        rows += [("went live", f"{_yes(outputs['live'])} — {_cell(d.get('switch_reason') or d.get('switch'))}"),
                 ("files", f"{d['files']} ({human_bytes(d['bytes'])})")]
        for key, label in (("upload", "uploaded"), ("copy", "copied server-side"), ("skip", "skipped (already stored)")):
            part = d.get(key) or {"files": 0, "bytes": 0}
            rows.append((label, f"{part['files']} files, {human_bytes(part['bytes'])}"))
        rows += [("time", f"{d.get('seconds', 0):.2f} s"), ("retries", str(d.get("retries", 0)))]
    else:
        state = "is live" + (" and pinned" if d.get("pinned") else "")
        rows += [("switched", _yes(outputs["switched"])), ("pinned", _yes(d.get("pinned")))]
        if d.get("note"):
            rows.append(("note", _cell(d["note"])))
    for report in d.get("after") or []:
        rows.append((f"CDN {_cell(report.get('switcher'))}", f"{'ok' if report.get('ok') else 'failed'} {_cell(report.get('detail') or '')}".strip()))
    source = " ".join(p for p in (_code(ctx.sha[:12]), _code(ctx.ref), f"[run]({ctx.run_url})" if ctx.run_url else "") if p)
    if source:
        rows.append(("source", source))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"### {title}\n\n{_code(version)} {state} on channel {_code(channel)}.\n\n| | |\n|---|---|\n{table}\n"


def _cell(value) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, no HTML."""
    text = " ".join(str(value if value is not None else "").split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _code(value) -> str:
    text = _cell(value).replace("`", "'")
    return f"`{text}`" if text else ""


def _yes(value) -> str:
    return "yes" if value in (True, "true") else "no"


def write_outputs(path: str, outputs: Mapping[str, str]) -> None:
    """Append outputs in the delimiter form, which is safe for any value, multi-line ones included."""
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in outputs.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def workflow_command(kind: str, message: str, title: str | None = None) -> str:
    """``::error title=…::message`` with the escaping the runner expects (a message can't end the line)."""
    def esc(text: str, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    props = f" title={esc(title, prop=True)}" if title else ""
    return f"::{kind}{props}::{esc(message)}"


def verbatim(text: str) -> str:
    """Text for the log that the runner must not read as workflow commands (file names, PR titles)."""
    token = uuid.uuid4().hex
    return f"::stop-commands::{token}\n{text.rstrip()}\n::{token}::"


def pull_request_comment(inputs: ActionInputs, ctx: GitHubContext, outputs: Mapping[str, str], run: CliRun) -> str | None:
    """Create or update the PR's preview comment; a one-line annotation to print, or None for "nothing to do".

    Publish creates the comment or updates it; channel-delete (the PR closed) only updates one that
    exists. Failures are warnings: the deploy itself succeeded.
    """
    from .pr_comment import CommentError, GitHubApi, marker, published_body, removed_body

    d = run.doc if isinstance(run.doc, dict) else {}
    if (not inputs.comment or not ctx.pr_number or run.code != 0 or d.get("dry_run")
            or inputs.command not in ("publish", "channel-delete")
            or (inputs.command == "channel-delete" and not d.get("deleted"))):  # nothing was deleted
        return None
    if not inputs.github_token or not ctx.repository:
        return workflow_command("warning", "no github-token (or GITHUB_REPOSITORY): the pull request comment was skipped.")
    api = GitHubApi(ctx.api_url, inputs.github_token, ctx.repository)
    channel = outputs["channel"]
    try:
        if inputs.command == "publish":
            body = published_body(channel=channel, version=outputs["version"], url=outputs.get("url") or None,
                                  live=outputs["live"] == "true", reason=d.get("switch_reason"),
                                  expires=d.get("expires"), sha=ctx.sha, run_url=ctx.run_url)
            action, link = api.upsert(ctx.pr_number, marker(channel), body)
        else:
            body = removed_body(channel=channel, version=outputs["version"] or None, run_url=ctx.run_url)
            action, link = api.upsert(ctx.pr_number, marker(channel), body, create=False)
    except CommentError as exc:
        return workflow_command("warning", str(exc), title="atomicsite: pull request comment not written")
    if action == "none":
        return None
    return workflow_command("notice", f"{action} the preview comment on PR #{ctx.pr_number}: {link}".rstrip(": "))


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    ctx = GitHubContext.from_env(env)
    try:
        inputs = ActionInputs.from_env(env)
    except UsageError as exc:
        print(workflow_command("error", str(exc), title="atomicsite action: bad input"), flush=True)
        return exc.exit_code
    for warning in inputs.warnings:
        print(workflow_command("warning", warning), flush=True)
    argv = command_line(inputs, ctx)
    # No secrets here: credentials stay in the environment. Escaped newlines keep it one log line.
    print("Running: " + shlex.join(["atomicsite", *argv]).replace("\r", "\\r").replace("\n", "\\n"), flush=True)
    run = run_cli(argv, {k: v for k, v in env.items() if k != env_name("github-token")})  # the CLI needs no token
    if run.stderr.strip():
        print(verbatim(run.stderr), flush=True)
    channel = argv[2] if inputs.command == "channel-delete" else argv[argv.index("--channel") + 1]
    if (inputs.command == "channel-delete" and run.code != 0 and isinstance(run.doc, dict)
            and run.doc.get("error") == "channel_not_found"):
        # A PR closed before its preview was published: nothing to clean up is success.
        print(workflow_command("notice", f"channel {channel!r} does not exist: nothing to delete."), flush=True)
        run = CliRun(0, run.doc, run.stderr)
    outputs = step_outputs(inputs.command, channel, run)
    if run.doc is not None:
        print("::group::atomicsite JSON result\n" + verbatim(outputs["json"]) + "\n::endgroup::", flush=True)
    if run.code != 0:
        title = f"atomicsite {inputs.command} failed (exit {run.code}: {EXIT_NAMES.get(run.code, 'error')})"
        print(workflow_command("error", run.error_line, title=title), flush=True)
    elif inputs.command == "publish" and outputs["live"] != "true" and run.doc.get("switch") in ("pinned", "no-promote"):
        print(workflow_command("notice", f"{outputs['version']} is committed but not live: {run.doc.get('switch_reason')}"), flush=True)
    note = pull_request_comment(inputs, ctx, outputs, run)
    if note:
        print(note, flush=True)
    if env.get("GITHUB_OUTPUT"):
        write_outputs(env["GITHUB_OUTPUT"], outputs)
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as fh:
            fh.write(summary_markdown(inputs.command, inputs.target, outputs, run, ctx) + "\n")
    return run.code


if __name__ == "__main__":
    sys.exit(main())
