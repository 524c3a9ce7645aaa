"""README.md's quick start, run as a newcomer runs it, and .ci/run running the same test command.

The commands are parsed out of README.md, so the README cannot drift from what is tested.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_PREFIX = "python3 -m venv .venv && . .venv/bin/activate && "


def quick_start() -> list[str]:
    """The shell commands of README.md's "Quick start" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    return commands[:2] if len(commands) > 2 and "http.server" in commands[2] else commands


def test_quick_start_is_two_commands_each_in_a_fresh_virtualenv():
    commands = quick_start()
    assert len(commands) == 2, commands
    publish, tests = commands
    assert publish.startswith(VENV_PREFIX) and "atomicsite publish" in publish and "atomicsite status" in publish
    assert tests.startswith(VENV_PREFIX) and tests.endswith("python -m pytest") and "'.[test]'" in tests


def test_ci_run_runs_the_readme_test_command():
    readme_tests = quick_start()[1][len(VENV_PREFIX):]
    script = (ROOT / ".ci" / "run").read_text()
    assert f'{readme_tests} "$@"' in script, "the command .ci/run runs is not README's test command"
    assert "-m venv" in script and "activate" in script


def test_ci_run_passes_shellcheck():
    from .test_github_action import tool

    proc = subprocess.run([tool("shellcheck"), str(ROOT / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def _stub_python(tmp_path: Path) -> Path:
    """A stand-in for python3 that makes a "virtualenv" whose pip succeeds and whose pytest exits with
    $STUB_PYTEST_RC: it tests .ci/run's own logic (fresh venv, exit codes) in milliseconds. The real
    install is proven by test_readme_quick_start_in_a_fresh_virtualenv below."""
    stub = tmp_path / "python3"
    stub.write_text(r'''#!/usr/bin/env bash
set -eu
[ "$1 $2" = "-m venv" ] || exit 99
venv=$3
[ ! -e "$venv/stale" ] || exit 98   # .ci/run must wipe it first
mkdir -p "$venv/bin"
printf 'PATH="%s/bin:$PATH"\n' "$venv" > "$venv/bin/activate"
printf '#!/bin/sh\necho "pip $*" >> "%s/calls"\n' "$venv" > "$venv/bin/pip"
printf '#!/bin/sh\necho "python $*" >> "%s/calls"\nexit "$STUB_PYTEST_RC"\n' "$venv" > "$venv/bin/python"
chmod +x "$venv/bin/pip" "$venv/bin/python"
''')
    stub.chmod(0o755)
    return stub


@pytest.mark.parametrize("pytest_rc, expected", [(0, 0), (1, 1), (2, 2), (5, 1)])
def test_ci_run_fails_when_pytest_fails_or_collects_nothing(tmp_path, pytest_rc, expected):
    venv = tmp_path / "ci-venv"
    venv.mkdir()
    (venv / "stale").write_text("left by an earlier run")
    env = {**os.environ, "PYTHON": str(_stub_python(tmp_path)), "CI_VENV": str(venv),
           "STUB_PYTEST_RC": str(pytest_rc)}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "-k", "x"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == expected, proc.stderr
    assert (venv / "calls").read_text().splitlines() == ["pip install -e .[test]", "python -m pytest -k x"]
    assert ("collected no tests" in proc.stderr) == (pytest_rc == 5)


def _copy_checkout(dest: Path) -> None:
    """What a fresh clone has: tracked and new files, nothing ignored (no .venv, no .atomicsite)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell what a fresh clone holds")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_quick_start_in_a_fresh_virtualenv(tmp_path):
    """Both README commands in a copy of the checkout, in the virtualenv they create. The second runs
    the test command with a few tests selected (the whole suite from inside the suite would recurse;
    .ci/run runs it whole)."""
    publish, tests = quick_start()
    clone = tmp_path / "clone"
    _copy_checkout(clone)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATOMICSITE_", "PYTEST_", "VIRTUAL_ENV"))}
    if sys.prefix != sys.base_prefix:  # a newcomer's shell has no virtualenv active yet
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                      if Path(p) != Path(sys.executable).parent)
    first = subprocess.run(["bash", "-c", publish], cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    live = os.readlink(clone / ".atomicsite" / "site" / "current").removeprefix("v/")
    assert (clone / ".atomicsite" / "site" / "current" / "index.html").is_file()
    assert live in first.stdout and "serve it:" in first.stdout
    assert (clone / ".venv" / "bin" / "atomicsite").is_file()

    selected = ("tests/test_github_action.py::test_the_runner_pythons_are_this_environment "
                "tests/test_cli.py::test_errors_are_one_line_with_documented_exit_codes")
    second = subprocess.run(["bash", "-c", f"{tests} -v -p no:cacheprovider {selected}"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=800)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    passed = [line for line in second.stdout.splitlines() if line.endswith("PASSED") or " PASSED " in line]
    assert any("[s3-" in line for line in passed) and any("[gcs-" in line for line in passed)  # its servers start
    assert any("test_the_runner_pythons_are_this_environment" in line for line in passed)
