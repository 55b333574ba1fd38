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
# The browser test of `ledrec look` (tests/look/test_browser.py) drives Debian's Chromium through Debian's
# chromedriver (Selenium never downloads one); install both when they are missing and we may (else it skips).
if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium for the browser test (chromium, chromium-driver)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "could not install Chromium: the browser test will be skipped" >&2
  else
    echo "no Chromium and no root apt-get: the browser test will be skipped" >&2
  fi
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
# screenshots of the browser test and other artifacts a person may want to open after a run
export LEDREC_TEST_ARTIFACTS="${LEDREC_TEST_ARTIFACTS:-$PWD/build/test-artifacts}"
.venv/bin/python -m pytest -q -m "" "$@"  # every test (-m "": the slow ones too, which plain pytest leaves out)
