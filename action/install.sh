#!/usr/bin/env bash
# Install atomicsite from the action's own checkout into a private virtualenv under $RUNNER_TEMP, so
# neither the job's own Python packages nor an "externally managed" system Python (PEP 668) get in
# the way. Writes the virtualenv's interpreter to $GITHUB_OUTPUT as `python`. Prints no environment.
set -euo pipefail

action_path=${ACTION_PATH:?ACTION_PATH must name the action directory}
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/atomicsite-action"
advice="Set the action's python-version input (e.g. '3.12') or run actions/setup-python before it."

python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "::error title=atomicsite needs Python 3.11+::No python3 on PATH. $advice"
  exit 2
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  found=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  echo "::error title=atomicsite needs Python 3.11+::$(command -v "$python") is Python $found. $advice"
  exit 2
fi

venv_python="$venv/bin/python"
[ -d "$venv/Scripts" ] && venv_python="$venv/Scripts/python.exe"
# Reuse the virtualenv when this job already installed this same checkout (the action used twice).
# The marker names the checkout and the interpreter, so a second use with another python-version rebuilds.
marker="$action_path $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
if [ -x "$venv_python" ] && [ "$(cat "$venv/.installed-from" 2>/dev/null)" = "$marker" ]; then
  echo "atomicsite is already installed in $venv"
else
  echo "::group::Install atomicsite from $action_path"
  "$python" -m venv --clear "$venv"
  venv_python="$venv/bin/python"
  [ -d "$venv/Scripts" ] && venv_python="$venv/Scripts/python.exe"
  "$venv_python" -m pip install --disable-pip-version-check --progress-bar off "${action_path}[s3,gcs,cloudfront]"
  "$venv_python" -m atomicsite --help >/dev/null
  printf '%s' "$marker" > "$venv/.installed-from"
  echo "::endgroup::"
fi

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "python=$venv_python" >> "$GITHUB_OUTPUT"
else
  echo "python=$venv_python"
fi
