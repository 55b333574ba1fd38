#!/usr/bin/env bash
# Create .venv with Python 3.11, install exactly what a lock says, and build the native serving front: `bootstrap.sh demo` what the demo runs
# (requirements/demo.txt), `bootstrap.sh test` (the default) also the test tools and the optional engines it
# tests (requirements/test.txt: pytest, ruff, grpcio-tools, faiss, usearch, pyspark, implicit, optuna). Every
# file is checked against the lock's sha256 (pip --require-hashes), build dependencies of the packages built
# from source (hnswlib) come from the same lock, and ledrec itself is installed editable on top, without
# dependencies. Idempotent and cheap when nothing changed: reinstalls only when the lock or pyproject.toml
# change (a test install also serves the demo). Regenerate the locks with `bash scripts/lock.sh`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      py="$candidate"; break
    fi
  done
fi
[ -n "$py" ] || { echo "ledrec needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $py" >&2
  "$py" -m venv .venv
fi
profile="${1:-test}"
case "$profile" in
  demo|test) lock="requirements/$profile.txt" ;;
  *) echo "bootstrap.sh: unknown profile '$profile' (demo or test)" >&2; exit 2 ;;
esac
want="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
installed() { [ -f ".venv/.ledrec-installed-$1" ] && [ "$(cat ".venv/.ledrec-installed-$1")" = "$(cat "requirements/$1.txt" pyproject.toml | sha256sum | cut -d' ' -f1)" ]; }
if ! installed "$profile" && ! { [ "$profile" = demo ] && installed test; }; then
  echo "installing ledrec ($profile) and exactly the versions of $lock into .venv (torch==2.13.0 CPU)" >&2
  pip_lock=.venv/.ledrec-pip-lock.txt  # pip itself first, from the lock: the venv's own pip predates --build-constraint
  awk '/^pip==/ {keep = 1; print; next} keep && /^ / {print; next} {keep = 0}' "$lock" > "$pip_lock"
  .venv/bin/python -m pip install --quiet --require-hashes --no-deps -r "$pip_lock"
  .venv/bin/python -m pip install --quiet --require-hashes --no-deps --build-constraint "$lock" -r "$lock"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  echo "$want" > ".venv/.ledrec-installed-$profile"
fi
# the native serving front (gRPC C++; as root it installs Debian's packages): built when its sources change,
# skipped with one line where it cannot be (ledrec serve then uses the Python front and says so)
bash scripts/build_native.sh "$lock"
