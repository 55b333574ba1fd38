#!/usr/bin/env bash
# Regenerate the locks from pyproject.toml: requirements/test.txt (everything the test suite installs) and
# requirements/demo.txt (what the demo runs; every version as in test.txt). Hashes of every file, pip-tools
# pinned below, Python 3.11. Keeps what is locked unless asked: `bash scripts/lock.sh --upgrade` takes the newest
# releases, `--upgrade-package NAME` one of them. After a change: bash scripts/test.sh (tests/test_lock.py
# checks that pyproject.toml and the locks agree and that .venv holds what they say).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools="${LEDREC_LOCK_VENV:-${TMPDIR:-/tmp}/ledrec-lock-tools}"
if [ ! -x "$tools/bin/pip-compile" ]; then
  python3.11 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet "pip==26.3" "pip-tools==7.7.0"
fi
common=(--quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links --no-emit-index-url "$@")
"$tools/bin/pip-compile" "${common[@]}" --extra dev -o requirements/test.txt pyproject.toml requirements/build.in
"$tools/bin/pip-compile" "${common[@]}" -c requirements/test.txt -o requirements/demo.txt pyproject.toml \
  requirements/build.in
echo "wrote requirements/test.txt and requirements/demo.txt" >&2
