#!/usr/bin/env bash
# The main job end to end on the embedded synthetic data (no download): generate a multi-feedback event
# log, pre-train PMI + SVD item embeddings, and run popularity, EASE, raw SVD and LED through the one-shot
# 'ledrec run' (hyper-parameters and checkpoints chosen on validation users, scores on test users); then run
# the daily job ('ledrec pipeline': one model per country, published), serve the published models over gRPC
# on 127.0.0.1 and ask them for recommendations.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh demo  # only what the demo runs (no test tools, no Spark)
out="${1:-runs/demo}"
mkdir -p "$out"
.venv/bin/ledrec generate --out "$out/events.parquet"
# pre-training on the training users' views only (held-out users stay unseen), as the paper pre-trains on views
.venv/bin/ledrec pretrain --data "$out/events.parquet" --protocol strong --feedback view --dim 64 \
  --out "$out/embeddings" > /dev/null 2>&1
declare -A options=(
  [pop]=""
  [ease]="--lam 10,30,100,300,1000,3000"
  [svd]="--dim 64"
  [led]="--init svd --dim 64 --lr 0.01 --init-scale 4 --epochs 30 --embeddings $out/embeddings"
)
for model in pop ease svd led; do
  # shellcheck disable=SC2086
  .venv/bin/ledrec run --data "$out/events.parquet" --protocol strong --model "$model" ${options[$model]} \
    --out "$out/$model" --json "$out/$model.json" --quiet > /dev/null
done
.venv/bin/python - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
print(f"\n{'model':8} {'recall@20':>10} {'recall@50':>10} {'ndcg@100':>10} {'fit_s':>8}")
for m in ("pop", "ease", "svd", "led"):
    r = json.loads((out / f"{m}.json").read_text())
    x = r["metrics"]
    print(f"{m:8} {x['recall@20']:10.4f} {x['recall@50']:10.4f} {x['ndcg@100']:10.4f} {r['timings']['fit_s']:8.2f}")
print(f"\nrun directories and JSON results are in {out}/")
PY
# the daily job on the same log: per country, pre-train -> LED -> index -> holdout (the last day) -> gate -> publish
.venv/bin/ledrec pipeline --events "$out/events.parquet" --out "$out/published" --days 30 --quiet \
  > "$out/pipeline.json"
.venv/bin/python - "$out" <<'PY'
import json, sys
report = json.load(open(f"{sys.argv[1]}/pipeline.json"))
print(f"\ndaily pipeline ({report['wall_s']:.0f} s): one model per country, published under {sys.argv[1]}/published/")
for name, part in report["catalogues"].items():
    print(f"  {name}: {part['decision']} {part['version']} ({part['reason']})")
PY
# serving: the published root, one model per country, each following its 'current' version; the server binds
# a port of its own choosing and names it in its ready line (printed once every model has passed its self-check)
.venv/bin/python - "$out" <<'PY'
import sys, grpc
from ledrec.export import publish
from ledrec.export.mips import ServingModel
from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc
from ledrec.serve.client import start_server, stop_server

published = f"{sys.argv[1]}/published"
with open(f"{sys.argv[1]}/serve.log", "w") as log:
    server, ready = start_server(published, stderr=log)
try:
    stub = ledrec_pb2_grpc.RecommenderStub(grpc.insecure_channel(ready["address"]))
    print(f"\ngRPC service on {ready['address']} (ledrec.v1.Recommender/Recommend)")
    for country, folder in sorted(publish.catalogues(published).items()):
        history = ServingModel.load(folder / publish.CURRENT).item_ids[:3].tolist()
        r = stub.Recommend(ledrec_pb2.RecommendRequest(partition=country, item_ids=history, k=5, exclude_seen=True))
        print(f"  {country} (model {r.model_version}): history {history} -> {[i.item_id for i in r.items]}")
    r = stub.Recommend(ledrec_pb2.RecommendRequest(partition=country, item_ids=["no-such-item"], k=5))
    print(f"  {country}, unknown history (cold start: most popular) -> {[i.item_id for i in r.items]}")
    s = stub.Similar(ledrec_pb2.SimilarRequest(partition=country, item_id=history[0], k=5))
    print(f"  {country}, items like {history[0]} (Similar) -> {[i.item_id for i in s.items]}")
finally:
    stop_server(server)
PY
echo "
to look at it in a browser (the page's packages are not in the demo's lock):
  .venv/bin/pip install -e '.[look]' && .venv/bin/ledrec look $out/published --events $out/events.parquet"
