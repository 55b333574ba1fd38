#!/usr/bin/env bash
# The test suite: lint, format check, then pytest. Creates .venv on first use.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh test
# The Spark tests need Java; install Debian's default JRE when it is missing and we may (else they skip).
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Java for the Spark tests (default-jre-headless)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null) \
      || echo "could not install Java: the Spark tests will be skipped" >&2
  else
    echo "no Java and no root apt-get: the Spark tests will be skipped" >&2
  fi
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest -q -m "" "$@"  # every test (-m "": the slow ones too, which plain pytest leaves out)
