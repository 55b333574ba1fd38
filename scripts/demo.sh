#!/usr/bin/env bash
# The main job end to end on the embedded synthetic data (no download): generate events, run the
# popularity baseline and EASE through the one-shot 'ledrec run', keep the run directories.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
out="${1:-runs/demo}"
mkdir -p "$out"
.venv/bin/ledrec generate --out "$out/events.parquet"
for model in pop ease; do
  extra=()
  [ "$model" = ease ] && extra=(--lam 10,30,100,300)
  .venv/bin/ledrec run --data "$out/events.parquet" --protocol strong --model "$model" "${extra[@]}" \
    --out "$out/$model" --json "$out/$model.json" --quiet --compact
done
.venv/bin/python - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print(f"\n{'model':8} {'recall@20':>10} {'recall@50':>10} {'ndcg@100':>10} {'fit_s':>8}")
for m in ("pop", "ease"):
    r = json.loads((out / f"{m}.json").read_text())
    x = r["metrics"]
    print(f"{m:8} {x['recall@20']:10.4f} {x['recall@50']:10.4f} {x['ndcg@100']:10.4f} {r['timings']['fit_s']:8.2f}")
print(f"\nrun directories and JSON results are in {out}/")
PY
