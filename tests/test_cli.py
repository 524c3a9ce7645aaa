"""The CLI: thin over the API, one-line errors with documented exit codes, --json everywhere."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import atomicsite
from atomicsite.cli import app
from atomicsite.manifest import Manifest

from .helpers import FIXTURES, site

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(rig, monkeypatch):
    """The CLI reaches the rig's store through its URL and environment, like a user would."""
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    for key, value in rig.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ATOMICSITE_TARGET", rig.url)
    return rig


def run(*args, code=0):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return result


def run_json(*args, code=0):
    return json.loads(run(*args, "--json", code=code).stdout)


def test_publish_promote_pin_rollback_round_trip(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build = site(tmp_path)
    first = run_json("publish", str(build), "-m", "first")
    assert first["switched"] and first["upload"]["files"] == 10 and first["live"] == first["version"]
    (build / "index.html").write_text("two")
    second = run_json("publish", str(build))
    reused = "copy" if second["layout"] == "tree" else "skip"  # objects layout: already in the pool
    assert second[reused]["files"] == 9 and second["upload"]["files"] == 1
    status = run_json("status")
    assert status["pointer"]["version"] == second["version"]
    assert status["pointer"]["previous"] == first["version"]
    assert run_json("rollback")["version"] == first["version"]
    pinned = run_json("pin", second["version"][:7])
    assert pinned["pinned"] and pinned["version"] == second["version"]
    (build / "index.html").write_text("three")
    third = run_json("publish", str(build))
    assert third["switch"] == "pinned" and not third["switched"]
    assert run_json("unpin")["pinned"] is False
    assert run_json("promote", third["version"])["switched"]
    rows = run_json("versions")
    assert [r["version"] for r in rows][0] == third["version"] and rows[0]["channels"] == ["live"]
    hist = run_json("history")
    assert [h["action"] for h in hist][:4] == ["promote", "unpin", "pin", "rollback"]
    d = run_json("diff", first["version"], third["version"])
    assert d["changed"] == ["index.html"]
    assert run_json("verify")["ok"]
    dry = run_json("publish", str(build), "--dry-run")
    assert dry["dry_run"] and dry["actions"][0]["reason"]
    assert run_json("prune", "--keep", "1", "--grace", "0")["deleted_versions"] == [first["version"]]
    assert run_json("channel", "list")[0]["channel"] == "live"


def test_human_output_has_tables_and_a_serve_hint(env, tmp_path, monkeypatch):
    build = site(tmp_path)
    out = run("publish", str(build)).stdout
    assert "now serves" in out
    assert "versions" in run("versions").stdout
    assert "version" in run("status").stdout


@pytest.mark.parametrize("args, code, kind", [
    (["publish", "does-not-exist"], 2, "build_dir"),
    (["promote", "ffffffffffff"], 4, "version_not_found"),
    (["promote", "zz"], 2, "usage"),
    (["rollback"], 4, "channel_not_found"),  # nothing published yet
    (["status"], 4, "target_not_found"),  # an empty target: nothing was ever published there
    (["versions"], 4, "target_not_found"),
    (["history"], 4, "target_not_found"),
    (["channel", "list"], 4, "target_not_found"),
    (["prune"], 4, "target_not_found"),
    (["verify"], 4, "target_not_found"),
    (["status", "--bogus"], 2, "usage"),  # click's own parse errors too, as JSON with --json
    (["bogus-command"], 2, "usage"),
    (["publish", ".", "--concurrency", "lots"], 2, "usage"),
    (["channel", "delete", "live"], 2, "usage"),
])
def test_errors_are_one_line_with_documented_exit_codes(env, args, code, kind):
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0])  # progress lines may come first
    assert "Traceback" not in result.stdout + result.stderr
    payload = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert payload["exit_code"] == code and payload["error"] == kind and payload["message"]


def test_default_target_is_local_and_documented(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    result = run("publish", str(FIXTURES / "blog"))
    assert (tmp_path / ".atomicsite" / "site" / "current" / "index.html").is_file()
    assert "python -m http.server -d" in result.stdout


def test_config_file_and_env_precedence(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.atomicsite]\ntarget = "from-pyproject"\n'
        '[[tool.atomicsite.headers]]\nmatch = "*.html"\ncache_control = "no-cache"\n'
    )
    out = run_json("publish", str(FIXTURES / "spa"))
    assert out["target"].endswith("/from-pyproject")
    stored = next((tmp_path / "from-pyproject/_atomicsite/manifests").iterdir()).read_bytes()
    assert Manifest.from_json(stored, where="test").by_path["index.html"].cache_control == "no-cache"
    monkeypatch.setenv("ATOMICSITE_TARGET", str(tmp_path / "from-env"))
    assert run_json("status", code=4)["error"] == "target_not_found"  # env beats the file
    assert run_json("status", "--target", str(tmp_path / "from-pyproject"))["pointer"]["version"] == out["version"]
    (tmp_path / "atomicsite.toml").write_text('target = "x"\nbogus = 1\n')
    err = run_json("status", code=2)
    assert err["error"] == "config" and "bogus" in err["message"]


def test_every_command_has_help_and_is_documented():
    docs = (ROOT / "docs" / "cli.md").read_text() + (ROOT / "README.md").read_text()
    commands = _command_paths(app)
    assert len(commands) >= 14
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0 and "Usage" in result.stdout, path
        assert f"atomicsite {' '.join(path)}" in docs, f"'atomicsite {' '.join(path)}' is not in docs/cli.md"


def _command_paths(typer_app):
    import typer.main

    group = typer.main.get_command(typer_app)
    paths = []

    def walk(cmd, prefix):
        for name, sub in getattr(cmd, "commands", {}).items():
            if getattr(sub, "commands", None):
                walk(sub, prefix + [name])
            else:
                paths.append(prefix + [name])

    walk(group, [])
    return paths


def test_real_subprocess_publish_and_exit_code(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMICSITE_")}
    target = tmp_path / "site"
    ok = subprocess.run([sys.executable, "-m", "atomicsite", "publish", str(FIXTURES / "odd-names"),
                         "--target", str(target), "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert (target / "current" / "ünïcødé" / "日本語.txt").read_text() == "unicode path\n"
    assert (target / "current" / "empty.txt").stat().st_size == 0
    bad = subprocess.run([sys.executable, "-m", "atomicsite", "pin", "0000000000000000", "--target", str(target)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 4 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert data["files"] == 7


def test_edge_cloudfront_function_prints_code_for_the_target(monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    code = run("edge", "cloudfront-function", "--target", "s3://bucket/my/site").stdout
    assert code.startswith("//") and '"atomicsite:live"' in code and '"/my/site"' in code
    data = run_json("edge", "cloudfront-function", "--target", "s3://bucket/site", "--channel", "pr-7")
    assert data["kvs_key"] == "atomicsite:pr-7" and data["root_prefix"] == "site"
    assert run_json("edge", "cloudfront-function", "--target", "s3://b/site", "--deploy", code=2)["error"] == "config"


def test_serve_command_serves_the_live_version(tmp_path):
    """`atomicsite serve` as a user runs it: a subprocess on a free port, then a real request."""
    import socket
    import time
    import urllib.request

    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMICSITE_")}
    target = tmp_path / "site"
    published = json.loads(subprocess.run(
        [sys.executable, "-m", "atomicsite", "publish", str(FIXTURES / "spa"), "--target", str(target), "--json"],
        check=True, capture_output=True, env=env, timeout=60).stdout)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "atomicsite", "serve", "--target", str(target), "--port", str(port),
                             "--pointer-ttl", "2s", "--spa", "/index.html"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    body, version = resp.read(), resp.headers["x-atomicsite-version"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert body == (FIXTURES / "spa" / "index.html").read_bytes()
        assert os.readlink(target / "current") == f"v/{version}"
    finally:
        proc.terminate()
        proc.wait(10)
    # the target as the same URL publish printed (not the relative path that was typed)
    assert f"serving 'live' of {published['target']} on http://127.0.0.1:{port}" in proc.stderr.read()


def test_target_that_cannot_be_written_is_access_denied(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    if os.geteuid() == 0:
        target = "/sys/atomicsite-cannot-write-here/site"  # sysfs refuses even root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "site")
    payload = run_json("publish", str(FIXTURES / "spa"), "--target", target, code=6)
    assert payload["error"] == "access_denied" and "cannot write" in payload["message"]


@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_bucket_that_does_not_exist_is_not_found(request, backend, monkeypatch):
    rig = request.getfixturevalue(f"{backend}_rig")
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    for key, value in rig.env.items():
        monkeypatch.setenv(key, value)
    scheme = rig.url.split("://")[0]
    payload = run_json("publish", str(FIXTURES / "spa"), "--target", f"{scheme}://no-such-bucket-4242/site", code=4)
    assert payload["error"] == "bucket_not_found" and "no-such-bucket-4242" in payload["message"]


def test_conflict_integrity_and_health_exit_codes(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    target = str(tmp_path / "site")
    build = site(tmp_path)
    v1 = run_json("publish", str(build), "--target", target)["version"]
    (build / "index.html").write_text("two")
    v2 = run_json("publish", str(build), "--target", target)["version"]
    run_json("pin", v1, "--target", target)
    assert run_json("promote", v2, "--target", target, code=3)["error"] == "conflict"
    (tmp_path / "site" / "v" / v1 / "robots.txt").write_text("tampered")
    assert run_json("verify", "--target", target, code=5)["ok"] is False
    run_json("unpin", "--target", target)
    dead = "http://127.0.0.1:9/"  # nothing listens on the discard port
    out = run_json("promote", v2, "--target", target, "--verify-url", dead, "--config", str(tmp_path / "cf.toml"),
                   code=2)  # a missing config file is a usage error
    assert out["error"] == "config"
    (tmp_path / "cf.toml").write_text("verify_timeout = 1\n")
    health = run_json("promote", v2, "--target", target, "--verify-url", dead, "--config", str(tmp_path / "cf.toml"),
                      code=7)
    assert health["error"] == "health_check_failed" and v1 in health["message"]


# --- the first ten minutes (issue 14): a CLI that explains itself -------------------------------

def local_env(monkeypatch, tmp_path):
    for key in [k for k in os.environ if k.startswith("ATOMICSITE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")


def test_version_short_help_and_shell_completion():
    assert run("--version").stdout == f"atomicsite {atomicsite.__version__}\n"
    assert run("-V").stdout == run("--version").stdout
    for path in [[], *_command_paths(app)]:
        short, long = runner.invoke(app, [*path, "-h"]), runner.invoke(app, [*path, "--help"])
        assert short.exit_code == 0 and short.stdout == long.stdout and "Usage" in short.stdout, path
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMICSITE_")}
    done = subprocess.run([sys.executable, "-m", "atomicsite"], capture_output=True, text=True, timeout=60,
                          env={**env, "_ATOMICSITE_COMPLETE": "complete_bash", "COMP_WORDS": "atomicsite pr",
                               "COMP_CWORD": "1"})
    assert done.stdout.split() == ["promote", "prune"]
    # typer detects the user's shell from the process tree (shellingham) unless told not to; without a
    # detected shell (a detached CI job) --show-completion takes the shell as its value only so
    shown = subprocess.run([sys.executable, "-m", "atomicsite", "--show-completion", "bash"], capture_output=True,
                           text=True, timeout=60, env={**env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert "complete -o" in shown.stdout, shown.stderr
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert "--install-completion" in docs and "_ATOMICSITE_COMPLETE" in docs


def test_metavars_read_like_words():
    import typer.main

    for path in _command_paths(app):
        cmd = typer.main.get_command(app)
        for part in path:
            cmd = cmd.commands[part]
        for param in cmd.params:
            if getattr(param, "is_flag", False) or param.name in ("help",):
                continue
            assert param.metavar and re.fullmatch(r"[A-Z][A-Z=]*", param.metavar), (path, param.name, param.metavar)
        text = runner.invoke(app, [*path, "--help"]).stdout
        assert not re.search(r"<[a-z]|\{[a-z_]+\}", text), (path, text)


def test_switch_lines_name_the_channel_and_say_things_once(tmp_path, monkeypatch):
    local_env(monkeypatch, tmp_path)
    one = tmp_path / "one"
    one.mkdir()
    (one / "index.html").write_text("hello")
    first = run("publish", str(one)).stdout
    assert "1 file," in first and "1 files" not in first and "live: now serves" in first
    v1 = run_json("status")["pointer"]["version"]
    (one / "index.html").write_text("preview")
    preview = run("publish", str(one), "-c", "pr-12").stdout
    assert "pr-12: now serves" in preview and "live:" not in preview
    assert "atomicsite serve --channel pr-12" in preview and "current" not in preview  # current is live's
    again = run("promote", v1).stdout
    assert again.count(v1) == 1 and "already serves" in again, again
    dry = run("publish", str(one), "--dry-run", "-c", "pr-12").stdout
    assert "switch: switch" not in dry and "no switch needed: channel 'pr-12' already serves" in dry
    assert "would switch: 'live' moves from" in run("publish", str(one), "--dry-run").stdout
    unpinned = run("unpin").stdout
    assert unpinned.count(v1) == 1 and "not pinned" in unpinned


def test_versions_and_history_fit_80_columns_with_whole_ids(tmp_path, monkeypatch):
    local_env(monkeypatch, tmp_path)
    build = site(tmp_path)
    ids = []
    for i in range(3):
        (build / "index.html").write_text(f"v{i}")
        ids.append(run_json("publish", str(build), "-m", f"release {i}: " + "a long message " * 12)["version"])
    run("publish", str(build), "-c", "a-rather-long-preview-channel-name")
    run("pin", ids[0], "-m", "incident " * 20)
    for command in (["versions"], ["history"], ["channel", "list"]):
        lines = run(*command).stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, "\n".join(lines)
        if command == ["versions"]:
            assert all(any(v in line for line in lines) for v in ids), lines
    hist = run("history").stdout
    assert ids[0] in hist and "just now" in hist
    full = run_json("history")
    assert full[0]["at"].endswith("Z") and len(full[0]["version"]) == len(ids[0])  # --json keeps full values


def test_verify_lists_missing_and_changed_paths(tmp_path, monkeypatch):
    local_env(monkeypatch, tmp_path)
    build = site(tmp_path)
    version = run_json("publish", str(build))["version"]
    root = tmp_path / ".atomicsite" / "site" / "v" / version
    (root / "robots.txt").write_text("tampered")
    (root / "index.html").unlink()
    result = run("verify", code=5)
    assert "missing: index.html" in result.stdout and "changed: robots.txt" in result.stdout
    assert "--repair" in result.stderr + result.stdout
    repaired = run_json("publish", str(build), "--repair")
    # robots.txt was changed through its hard link, so in the pool too: stored again; index.html is relinked
    assert repaired["version"] == version and repaired["upload"]["files"] == 1
    assert "0 missing, 0 changed" in run("verify").stdout


def test_version_names_live_current_previous(tmp_path, monkeypatch):
    """`live` is production (the live channel's version) whatever -c says; `current` is the acting channel's."""
    local_env(monkeypatch, tmp_path)
    build = site(tmp_path)
    prod = run_json("publish", str(build))["version"]
    (build / "index.html").write_text("staging build")
    stage = run_json("publish", str(build), "-c", "staging")["version"]
    assert run_json("diff", "current", "live", "-c", "staging")["a"] == stage
    assert run_json("verify", "-c", "staging")["version"] == stage  # default: what the channel serves
    moved = run_json("promote", "live", "-c", "staging")
    assert moved["channel"] == "staging" and moved["version"] == prod and moved["before"] == stage
    assert run_json("promote", "previous", "-c", "staging")["version"] == stage
    docs = (ROOT / "docs" / "cli.md").read_text()
    assert "promote live --channel staging" in docs


def test_serve_flags_are_checked_before_serving(tmp_path, monkeypatch):
    local_env(monkeypatch, tmp_path)
    run("publish", str(FIXTURES / "spa"))
    missing = run_json("serve", "--spa", "/nope.html", code=2)
    assert missing["error"] == "usage" and "--spa" in missing["message"] and "nope.html" in missing["message"]
    bad = run_json("serve", "--pointer-ttl", "soon", code=2)
    assert "--pointer-ttl" in bad["message"]


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_publish_says_the_site_is_unchanged(tmp_path, sig, code, word):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOMICSITE_")}
    target = tmp_path / "site"
    first = json.loads(subprocess.run([sys.executable, "-m", "atomicsite", "publish", str(FIXTURES / "spa"), "-t",
                                       str(target), "--json"], capture_output=True, text=True, env=env, timeout=60,
                                      check=True).stdout)["version"]
    big = tmp_path / "big"
    big.mkdir()
    for i in range(4000):
        (big / f"page-{i}.html").write_text(f"page {i}\n" * 50)
    proc = subprocess.Popen([sys.executable, "-m", "atomicsite", "publish", str(big), "-t", str(target),
                             "--concurrency", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "transfer" in line:
            proc.send_signal(sig)
            break
    try:  # a prompt exit is the point: a CI runner kills the job a few seconds after SIGTERM
        _, rest = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("publish did not exit within 60 s of the signal: " + "".join(seen)) from None
    assert proc.returncode == code, "".join(seen) + rest
    [message] = [line for line in rest.splitlines() if line.startswith("error: ")]
    assert f"publish {word}" in message and "'live' is unchanged (still " + first + ")" in message
    assert "Run the same publish again to resume it." in message and "Traceback" not in rest
    assert json.loads((target / "_atomicsite" / "channels" / "live.json").read_text())["version"] == first


def test_config_is_found_walking_up_and_its_target_is_relative_to_it(tmp_path, monkeypatch):
    local_env(monkeypatch, tmp_path)
    (tmp_path / "atomicsite.toml").write_text('target = "public-site"\n')
    deep = tmp_path / "src" / "pages"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    published = run_json("publish", str(FIXTURES / "spa"))
    assert published["target"] == f"file://{tmp_path / 'public-site'}"
    assert run_json("status")["pointer"]["version"] == published["version"]
    (tmp_path / "atomicsite.toml").unlink()
    (tmp_path / "src" / "pyproject.toml").write_text('[tool.atomicsite]\ntarget = "../public-site"\n')
    assert run_json("status")["pointer"]["version"] == published["version"]  # the nearest config wins


@pytest.mark.parametrize("config, env, flags, named", [
    ("", {"ATOMICSITE_CHANNEL": "Bad Name"}, [], "ATOMICSITE_CHANNEL"),
    ("", {"ATOMICSITE_CONCURRENCY": "lots"}, [], "ATOMICSITE_CONCURRENCY"),
    ("", {}, ["--addressing-style", "sideways"], "--addressing-style"),
    ("", {}, ["--channel", "Bad!"], "--channel"),
    ("[prune]\nkeeep = 3\n", {}, [], "atomicsite.toml: [prune] keeep"),
    ("[prune]\nkeep = 0\n", {}, [], "atomicsite.toml: [prune] keep"),
    ("[serve]\nportt = 3\n", {}, [], "[serve]: unknown setting 'portt'"),
    ("[serve]\npointer_ttl = \"soon\"\n", {}, [], "[serve] pointer_ttl"),
    ("[[headers]]\nmatch = \"*.html\"\ncache = \"x\"\n", {}, [], "headers[0] cache"),
    ("bogus = 1\n", {}, [], "atomicsite.toml: bogus"),
    ("addressing_style = \"sideways\"\n", {}, [], "atomicsite.toml: addressing_style"),
])
def test_config_errors_name_the_key_variable_or_flag(tmp_path, monkeypatch, config, env, flags, named):
    """Every table, [serve] included, is checked when any command loads the config."""
    local_env(monkeypatch, tmp_path)
    (tmp_path / "atomicsite.toml").write_text(config)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    payload = run_json("status", *flags, code=2)
    assert payload["error"] == "config" and named in payload["message"], payload


def _doc_sections() -> dict[str, str]:
    """docs/cli.md split by its '## atomicsite COMMAND' headings; '' holds everything before them."""
    text = (ROOT / "docs" / "cli.md").read_text()
    parts = re.split(r"^## (atomicsite [^\n]*)$", text, flags=re.M)
    sections = {"": parts[0]}
    for heading, body in zip(parts[1::2], parts[2::2]):
        words = [w for w in heading.split()[1:] if re.fullmatch(r"[a-z][a-z-]*", w)]
        sections[" ".join(words)] = body
    return sections


def test_every_option_of_every_command_is_documented():
    """docs/cli.md cannot drift from the typer app: each command's own options (long and short forms)
    are in its section, the options every command takes in the shared table, the root's at the top."""
    import typer.main

    sections = _doc_sections()
    root = typer.main.get_command(app)
    common = {opt for p in root.commands["status"].params for opt in p.opts}  # status has only the shared ones
    for param in root.params:
        for opt in param.opts + param.secondary_opts:
            assert f"`{opt}" in sections[""], f"root option {opt} is not in docs/cli.md"
    missing = []
    for path in _command_paths(app):
        cmd = root
        for part in path:
            cmd = cmd.commands[part]
        name = " ".join(path)
        assert name in sections, f"docs/cli.md has no '## atomicsite {name}' section"
        for param in cmd.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            where = sections[""] if any(o in common for o in param.opts) else sections[name]
            missing += [f"{name} {opt}" for opt in param.opts + param.secondary_opts if f"`{opt}" not in where]
    assert not missing, f"options missing from docs/cli.md: {missing}"


def test_interrupt_messages_say_what_state_each_step_leaves():
    from atomicsite.interrupt import PublishState, Stopped, interrupted

    def say(command, stage=None):
        state = PublishState(stage, "pr-12", "2222222222222222", "1111111111111111") if stage else None
        return interrupted(command, KeyboardInterrupt(), state)

    assert "nothing was changed" in str(say("versions"))
    for stage in (None, "scan", "plan"):
        assert "nothing was written; 'pr-12' is unchanged" in str(say("publish", stage)) or stage is None
    for stage in ("transfer", "verify", "commit"):
        text = str(say("publish", stage))
        assert f"during {stage}" in text and "'pr-12' is unchanged (still 1111111111111111)" in text
    switching = str(say("publish", "switch"))
    assert "either 1111111111111111 or 2222222222222222, never a mix" in switching and "atomicsite status" in switching
    assert "either the version it had or the one asked for" in str(say("rollback"))
    assert "run 'atomicsite prune' again" in str(say("prune")).lower()
    term = interrupted("publish", Stopped(), None)
    assert term.exit_code == 143 and term.kind == "terminated" and say("status").exit_code == 130
