#!/usr/bin/env bash
# LED's four losses x init {random, svd} x tuning {full, project} through 'ledrec run' on one dataset.
# Usage: bash benchmarks/led_grid.sh DATA_DIR PROTOCOL OUT_DIR [extra ledrec run options...]
#   e.g. bash benchmarks/led_grid.sh ../shared/data/ml-latest-small strong runs/led-grid-mlsmall --batch-size 64
# Then: .venv/bin/python benchmarks/results_table.py OUT_DIR
# (random init + project tuning learns P over frozen random vectors: the control for pre-training.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
data=$1 protocol=$2 out=$3
shift 3
mkdir -p "$out"
for loss in mult mult-css bpr ns; do
  for init in random svd; do
    for tuning in full project; do
      name="$loss-$init-$tuning"
      [ -f "$out/$name.json" ] && continue  # resumable: finished runs are kept
      echo "== $name" >&2
      /usr/bin/time -v -o "$out/$name.time" .venv/bin/ledrec run --data "$data" --protocol "$protocol" --model led \
        --loss "$loss" --init "$init" --tuning "$tuning" "$@" --quiet --compact --json "$out/$name.json" > /dev/null
    done
  done
done
