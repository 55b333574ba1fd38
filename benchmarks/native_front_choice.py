"""Why the native front is an extension module in the serving process, not a binary beside it: the same
do-nothing handler (decode the request, answer a fixed 20-item response) served

* by ``ledrec-floor``, a program of its own (benchmarks/grpc_load/floor.cc), and
* by ``ledrec.serve._native`` in floor mode, inside a Python process whose main thread runs the control
  loop of ``ledrec serve`` (waking every 0.1 s),

each driven by the native load generator (closed loop: max QPS with 4 clients; open loop: p50 / p99 at
1,000 QPS), alternated, medians of --repeats. If the two agree, living in the Python process costs the data
plane nothing, and the extension gets what a binary cannot: the manager hands it the very arrays and graphs
it verified (no second loader, no files re-read and re-checked in C++) and asks its C++ request path for the
self-check in the same process.

Usage: .venv/bin/python benchmarks/native_front_choice.py [--repeats 3] [--seconds 5]
(needs bash scripts/build_native.sh and bash benchmarks/grpc_load/build.sh)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ledrec.bench.serve import ServeBenchConfig, _drive, _native_floor_server
from ledrec.serve.ports import spawn_on_port

BUILD = Path(__file__).resolve().parent / "grpc_load" / "build"


def binary_floor(config: ServeBenchConfig) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([str(BUILD / "ledrec-floor"), "--port-file", str(port_file), "--k", str(config.k)])
        try:
            deadline = time.monotonic() + 30
            while not (port_file.is_file() and port_file.read_text().endswith("\n")):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("ledrec-floor did not start")
                time.sleep(0.01)
            return _drive(config, int(port_file.read_text()))
        finally:
            proc.terminate()
            proc.wait(10)


def extension_floor(config: ServeBenchConfig) -> dict:
    port, procs = spawn_on_port(_native_floor_server, (config.k,), processes=1)
    try:
        return _drive(config, port)
    finally:
        for p in procs:
            p.terminate()
            p.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    histories = [[str(i + j) for j in range(10)] for i in range(1000)]
    config = ServeBenchConfig(
        serving_dir="", histories=histories, workers=1, seconds=args.seconds, client="cpp", rate=1000.0
    )
    config.validate()
    rows: dict[str, list[dict]] = {"binary": [], "extension": []}
    for r in range(args.repeats):
        for name in ("binary", "extension") if r % 2 == 0 else ("extension", "binary"):
            result = (binary_floor if name == "binary" else extension_floor)(config)
            row = {
                "max_qps": result["closed"]["qps"],
                "p50_us": result["open"]["latency"]["p50_us"],
                "p99_us": result["open"]["latency"]["p99_us"],
            }
            rows[name].append(row)
            print(json.dumps({"repeat": r + 1, "server": name, **row}), file=sys.stderr, flush=True)
    medians = {name: {k: round(float(np.median([x[k] for x in v])), 1) for k in v[0]} for name, v in rows.items()}
    print(json.dumps({"runs": rows, "median": medians}, indent=2))


if __name__ == "__main__":
    main()
