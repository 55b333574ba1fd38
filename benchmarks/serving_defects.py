"""The serving defects of issue 16, each tried through what old and new ledrec both have (the CLI,
ServingModel, load_retriever), so the same script shows them on the old code and their absence on the new.
Prints one line per defect: SEEN (it shows) or fixed. Loopback only; a few minutes on 2 cores.

    .venv/bin/python benchmarks/serving_defects.py                       # this checkout
    PYTHONPATH=OLD_CHECKOUT/src .venv/bin/python benchmarks/serving_defects.py   # another version
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

from ledrec.export.mips import ServingModel
from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc
from ledrec.serve.client import read_ready_line, start_server
from ledrec.serve.loading import load_retriever
from ledrec.serve.retriever import RetrieverConfig

tmp = Path(tempfile.mkdtemp())


def toy(seed=0, parts=None, n=3000, d=16):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d)).astype(np.float32)
    return ServingModel(
        item_ids=np.array([f"i{i}" for i in range(n)]),
        encoder_vectors=v,
        item_vectors=v,
        item_bias=rng.normal(size=n).astype(np.float32),
        query_map=np.eye(d, dtype=np.float32),
        partitions=parts or {"fr": np.arange(0, 2000), "de": np.arange(1000, 3000)},
    )


def recall(r, part):
    m = r.model
    items = m.partitions[part]
    rng = np.random.default_rng(1)
    hits = []
    for _ in range(30):
        h = rng.choice(items, 3, replace=False)
        got = r.recommend(part, [f"i{i}" for i in h], 20).item_ids
        s = m.scores(m.user_vector(np.sort(h)), items)
        s[np.isin(items, h)] = -np.inf
        want = m.item_ids[items[np.argsort(-s)[:20]]].tolist()
        hits.append(len(set(got) & set(want)) / 20)
    return np.mean(hits)


def report(name, seen, detail=""):
    print(f"{'SEEN ' if seen else 'fixed'} | {name} | {detail}", flush=True)


cfg = RetrieverConfig(exact_below=0, index_params={"M": 16})
# 1 stale cache
e = tmp / "e1"
toy().save(e)
load_retriever(e, cfg)
toy(parts={"fr": np.arange(1000, 3000), "de": np.arange(0, 2000)}).save(e)
r = load_retriever(e, cfg)
rc = recall(r, "fr")
report("stale graph cache after a re-export with other members", rc < 0.9, f"recall@20 {rc:.3f}")
# 2 byte-flipped cache
e = tmp / "e2"
toy().save(e)
load_retriever(e, cfg)
for g in (e / "index-cache").glob("hnsw-*.bin"):
    b = bytearray(g.read_bytes())
    b[len(b) // 3] ^= 0xFF
    g.write_bytes(bytes(b))
code = (
    "from ledrec.serve.loading import load_retriever; from ledrec.serve.retriever import RetrieverConfig; "
    f"r = load_retriever({str(e)!r}, RetrieverConfig(exact_below=0, index_params={{'M': 16}})); "
    "print(sorted(getattr(r, 'cache_events', {}).values()))"
)
p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
report(
    "byte-flipped cached graph loaded and served",
    "rebuilt" not in p.stdout,
    f"exit {p.returncode}, {p.stdout.strip()[:80]}",
)


# 3-4 broken exports accepted
def broken(name, edit):
    e = tmp / f"b-{name}"
    toy().save(e)
    edit(e)
    try:
        load_retriever(e, cfg)
        report(f"broken export accepted: {name}", True)
    except Exception as exc:
        report(f"broken export accepted: {name}", False, f"{type(exc).__name__}: {str(exc)[:90]}")


def rewrite(e, name, a):
    np.save(e / f"{name}.npy", a)
    m = json.loads((e / "manifest.json").read_text())
    from ledrec.io import sha256_file

    m["arrays"][name].update(sha256=sha256_file(e / f"{name}.npy"), shape=list(a.shape), dtype=str(a.dtype))
    (e / "manifest.json").write_text(json.dumps(m))


broken("item ids != vectors", lambda e: rewrite(e, "item_ids", np.load(e / "item_ids.npy")[:-1]))
broken("query map of the wrong shape", lambda e: rewrite(e, "query_map", np.eye(17, dtype=np.float32)))


def nan(e):
    v = np.load(e / "item_vectors.npy")
    v[5, 0] = np.nan
    rewrite(e, "item_vectors", v)


broken("NaN vectors", nan)


def outside(e, fmt):
    o = (e.parent / (e.name + "-out")).resolve()
    o.mkdir()
    shutil.copy(e / "item_bias.npy", o / "item_bias.npy")
    (e / "item_bias.npy").unlink()
    m = json.loads((e / "manifest.json").read_text())
    m["arrays"]["item_bias"]["file"] = fmt.format(o=o, n=o.name)
    (e / "manifest.json").write_text(json.dumps(m))


broken("absolute manifest path", lambda e: outside(e, "{o}/item_bias.npy"))
broken("'..' manifest path", lambda e: outside(e, "../{n}/item_bias.npy"))
# 5 fallback to the raw run: a run dir whose serving/ has a manifest of another kind
run = tmp / "run"
subprocess.run(
    [
        sys.executable,
        "-m",
        "ledrec.cli",
        "run",
        "--data",
        "synthetic:n_users=200,n_items=80,n_partitions=2",
        "--protocol",
        "strong",
        "--model",
        "svd",
        "--dim",
        "4",
        "--out",
        str(run),
    ],
    capture_output=True,
)
subprocess.run(
    [
        sys.executable,
        "-m",
        "ledrec.cli",
        "export",
        str(run),
        "--data",
        "synthetic:n_users=200,n_items=80,n_partitions=2",
    ],
    capture_output=True,
)
shutil.copy(run / "model" / "manifest.json", run / "serving" / "manifest.json")
try:
    r = load_retriever(run)
    report("serving manifest of another kind: silent fallback to the raw run", True, f"partitions {list(r.partitions)}")
except Exception as exc:
    report("serving manifest of another kind: silent fallback to the raw run", False, str(exc)[:90])


# server-level: each server binds port 0 itself and says which port in its ready line
def serve(path, *flags):
    p, ready = start_server(path, *flags, timeout=60)
    return p, ready["port"], grpc.insecure_channel(ready["address"])


e = tmp / "srv"
toy().save(e)
p, port, ch = serve(e, "--exact-below", "0")
raw = ch.unary_unary("/ledrec.v1.Recommender/Recommend")
try:
    raw(b"\xff\xff\xff", timeout=5)
    code = "OK"
except grpc.RpcError as exc:
    code = exc.code().name
report("undecodable protobuf gets UNKNOWN", code != "INVALID_ARGUMENT", code)
stub = ledrec_pb2_grpc.RecommenderStub(ch)
code, size = "OK", 0
try:
    stub.Recommend(ledrec_pb2.RecommendRequest(partition="x" * 200_000, item_ids=["i1"], k=5), timeout=5)
except grpc.RpcError as exc:
    code, size = exc.code().name, len(exc.details() or "")
# the old server echoed the name into the status message, which overflowed the reply headers
report(
    "a 200 KB partition name echoed back unbounded", code != "INVALID_ARGUMENT" or size > 500, f"{code}, {size} chars"
)
# SIGTERM with a backlog
futs = [
    stub.Recommend.future(
        ledrec_pb2.RecommendRequest(
            partition="fr",
            item_ids=[f"i{i}" for i in range(1000)],
            k=100,
            allowed_item_ids=[f"i{i}" for i in range(3000)] * 6,
        ),
        timeout=60,
    )
    for _ in range(300)
]
while not any(f.done() for f in futs):
    time.sleep(0.005)
os.killpg(p.pid, signal.SIGTERM)
lost = 0
for f in futs:
    try:
        f.result()
    except grpc.RpcError:
        lost += 1
report("SIGTERM with a backlog cancels queued requests", lost > 0, f"{lost} of 300 lost")
p.wait(30)
ch.close()
# port sharing with --workers 2, kill -9
a, ready = start_server(e, "--workers", "2", stderr=subprocess.DEVNULL)
port = ready["port"]
f2 = tmp / "other"
toy(seed=5).save(f2)
second = [sys.executable, "-m", "ledrec.cli", "serve", str(f2), "--port", str(port), "--workers", "2"]
b = subprocess.Popen(
    [*second, "--metrics-port", "0"],
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
    start_new_session=True,
)
try:  # it serves (a ready line) or exits (the port is taken)
    read_ready_line(b, timeout=60)
except RuntimeError:
    pass
report(
    "a second --workers instance silently shares the port",
    b.poll() is None,
    f"second server {'running' if b.poll() is None else 'exit ' + str(b.returncode)}",
)
if b.poll() is None:
    os.killpg(b.pid, signal.SIGKILL)
kids = [int(c) for c in Path(f"/proc/{a.pid}/task/{a.pid}/children").read_text().split()]
os.kill(a.pid, signal.SIGKILL)
a.wait()
time.sleep(8)
alive = [
    k
    for k in kids
    if Path(f"/proc/{k}").exists() and Path(f"/proc/{k}/stat").read_text().split(")")[-1].split()[0] != "Z"
]
report("workers live on after kill -9 of the parent", bool(alive), f"{len(alive)} of {len(kids)} alive 8 s later")
for k in alive:
    os.kill(k, signal.SIGKILL)
# torch
p = subprocess.run(
    [sys.executable, "-c", "import ledrec.serve.server, sys; print('torch' in sys.modules)"],
    capture_output=True,
    text=True,
)
report("import ledrec.serve.server imports torch", p.stdout.strip() == "True")
