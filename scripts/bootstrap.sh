#!/usr/bin/env bash
# Create .venv with Python 3.11 and install ledrec (editable) into it: `bootstrap.sh demo` installs what the
# demo runs (ledrec and its dependencies), `bootstrap.sh test` (the default) also the dev and test tools
# (pytest, ruff, protoc, faiss, usearch, pyspark). Idempotent and cheap when nothing changed: reinstalls
# only when pyproject.toml changes (a test install also serves the demo).
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
  demo) target=. ;;
  test) target=".[dev]" ;;
  *) echo "bootstrap.sh: unknown profile '$profile' (demo or test)" >&2; exit 2 ;;
esac
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
installed() { [ -f ".venv/.ledrec-installed-$1" ] && [ "$(cat ".venv/.ledrec-installed-$1")" = "$want" ]; }
if ! installed "$profile" && ! { [ "$profile" = demo ] && installed test; }; then
  echo "installing ledrec ($profile) and its dependencies into .venv (torch==2.13.0 CPU)" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first, pinned: this machine carries its CPU wheel; a looser range pulls a multi-GB CUDA build.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e "$target"
  echo "$want" > ".venv/.ledrec-installed-$profile"
fi
