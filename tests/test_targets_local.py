"""Local targets that cannot be written: one line and exit 6 (access), never a traceback."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atomicsite.cli import app
from atomicsite.errors import EXIT_ACCESS

from .helpers import FIXTURES


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def publish_to(target) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["publish", str(FIXTURES / "blog"), "--target", str(target)])
    return res.exit_code, res.stderr


def assert_one_line_access_error(code: int, stderr: str, *words: str) -> None:
    errors = [line for line in stderr.splitlines() if not line.startswith("·")]
    assert code == EXIT_ACCESS, stderr
    assert "Traceback" not in stderr and len(errors) == 1 and errors[0].startswith("error:"), stderr
    for word in words:
        assert word in errors[0]


def test_target_that_is_a_broken_symlink(tmp_path, clean_env):
    link = tmp_path / "site"
    os.symlink(tmp_path / "gone" / "away", link)
    assert_one_line_access_error(*publish_to(link), "broken symlink", str(link))
    assert_one_line_access_error(*publish_to(link / "sub"), "broken symlink")  # under a broken link too


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux /proc")
def test_target_on_a_system_path_that_cannot_hold_files(clean_env):
    assert_one_line_access_error(*publish_to("/proc/atomicsite-site"), "/proc/atomicsite-site")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_target_in_a_read_only_directory(tmp_path, clean_env):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_one_line_access_error(*publish_to(ro / "site"), str(ro))
    finally:
        ro.chmod(0o700)


def test_target_that_is_a_regular_file(tmp_path, clean_env):
    target = tmp_path / "site"
    target.write_text("not a directory")
    assert_one_line_access_error(*publish_to(target), "is a file, not a directory")
    assert_one_line_access_error(*publish_to(target / "sub"), "is a file, not a directory")
