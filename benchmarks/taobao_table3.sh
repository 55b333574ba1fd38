#!/usr/bin/env bash
# The analogue of the seed paper's Table 3 on real multi-feedback data (Taobao view / cart / buy):
# pre-train on views, fine-tune with inputs = views + carts + buys and targets = buys; test Recall@20 on the
# held-out buys, for init {random, svd} x tuning {full, project}, ranking either every item except the
# user's whole history (--exclude history: a viewed test buy is a certain miss) or every item except the
# items already bought (--exclude target).
# Usage: bash benchmarks/taobao_table3.sh [OUT_DIR] [extra ledrec run options...]
# Then:  .venv/bin/python benchmarks/led_grid_table.py OUT_DIR --rows exclude,init --cols tuning
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
data="${SHARED_DATA:-../shared/data}/taobao-multibehavior"
out="${1:-runs/taobao-table3}"
shift || true
mkdir -p "$out"
for exclude in history target; do
  for init in random svd; do
    for tuning in full project; do
      name="$exclude-$init-$tuning"
      [ -f "$out/$name.json" ] && continue  # resumable: finished runs are kept
      echo "== $name" >&2
      /usr/bin/time -v -o "$out/$name.time" .venv/bin/ledrec run --data "$data" --protocol bars --model led \
        --pretrain-feedback view --exclude "$exclude" --init "$init" --tuning "$tuning" "$@" \
        --quiet --compact --json "$out/$name.json" > /dev/null
    done
  done
done
