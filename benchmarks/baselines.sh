#!/usr/bin/env bash
# Popularity and EASE on the shared datasets, through the one-shot 'ledrec run', under /usr/bin/time -v.
# Usage: bash benchmarks/baselines.sh [OUT_DIR] [NAME ...]   (names: run only those, e.g. gowalla-ease)
# Writes OUT_DIR/<dataset>-<model>.json (+ .time with wall time and peak memory); then
#   .venv/bin/python benchmarks/results_table.py runs/results
# prints the README's results table. EASE on Gowalla / Amazon-CDs takes ~15-30 minutes each on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
data="${SHARED_DATA:-../shared/data}"
out="${1:-runs/results}"
shift || true
only=" $* "
mkdir -p "$out"
lams="${EASE_LAMBDAS:-20,50,100,200,500,1000}"
lams_dense="${EASE_LAMBDAS_DENSE:-100,200,500,1000,2000,5000,10000}"  # ML-1M is dense: its optimum is higher

run() {  # name dataset protocol model [options...]
  local name=$1 dataset=$2 protocol=$3 model=$4; shift 4
  [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
  [ -d "$data/$dataset" ] || { echo "skip $name: $data/$dataset absent" >&2; return; }
  echo "== $name" >&2
  /usr/bin/time -v -o "$out/$name.time" .venv/bin/ledrec run --data "$data/$dataset" --protocol "$protocol" \
    --model "$model" "$@" --quiet --compact --json "$out/$name.json" > /dev/null
}

run ml-latest-small-pop   ml-latest-small      strong pop
run ml-latest-small-ease  ml-latest-small      strong ease --lam "$lams"
run ml-1m-lcfn-pop        ml-1m-implicit-lcfn  bars   pop
run ml-1m-lcfn-ease       ml-1m-implicit-lcfn  bars   ease --lam "$lams_dense"
run amazon-cds-pop        amazon-cds-bgcf      bars   pop
run amazon-cds-ease       amazon-cds-bgcf      bars   ease --lam "$lams" --select-max-items 15000
run gowalla-pop           gowalla-lightgcn     bars   pop
run gowalla-ease          gowalla-lightgcn     bars   ease --lam "$lams" --select-max-items 15000
