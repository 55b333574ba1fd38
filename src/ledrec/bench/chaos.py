"""``ledrec bench chaos``: the service tried as an operator and an attacker would, every answer checked.

It starts its own ``ledrec serve`` (its own processes, loopback only) on copies of an export and runs,
bounded in count and time:

1. **hostile requests** — seeded, of every kind: valid ones, unknown ids and partitions, k out of range,
   histories and allowed lists too long, oversize messages, fields of the wrong wire type, random and
   truncated bytes, invalid UTF-8, unicode, unknown fields. Each answer is checked against what the
   request must get: the status code, and for OK answers the items and scores of exact numpy scoring
   (:class:`Oracle`); the server's own counters must agree with what the client saw.
2. **hot swaps under load** — the served symlink flipped between two models while clients keep asking;
   every answer checked against the model its ``model_version`` names, none may fail.
3. **corrupt exports at reload** — each way of breaking an export (``ledrec.bench.corrupt``) put behind the
   symlink: refused ones must leave the old model serving (and not be retried until the files change
   again), cache faults must be rebuilt and answer right.
4. **corrupt exports at start** — the same on a fresh ``ledrec serve``: exit 2 with one line naming the
   file, no traceback; cache faults start and answer right.
5. **kill -9 and restart** — no process of the old server may outlive it; the time to healthy is measured.
6. **SIGTERM drain** — hundreds of slow requests queued, then SIGTERM: all must be answered, right.

It prints a table (class, requests, codes, wrong answers, crashes, health after, resident memory before
and after) and exits non-zero on any wrong answer, crash or lost accepted request.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ledrec.bench import corrupt
from ledrec.config import option
from ledrec.errors import ConfigError
from ledrec.export.mips import ServingModel
from ledrec.serve.client import start_server
from ledrec.serve.loading import load_retriever, load_serving_model
from ledrec.serve.retriever import RetrieverConfig, retriever_version

METHOD = "/ledrec.v1.Recommender/Recommend"
MAX_DETAILS = 600  # a status message longer than this is unbounded echo (the server clips at 500)


@dataclass
class ChaosConfig:
    export: str  # a serving export or run directory to copy and torture
    out: str
    requests: int = option(10_000, "seeded hostile requests, every answer checked")
    swaps: int = option(6, "hot swaps between two models under load")
    workers: int = option(2, "server processes (ledrec serve --workers)")
    front: str = option(
        "auto",
        "the front under attack (ledrec serve --front): native, python or auto",
        choices=("auto", "native", "python"),
    )
    drain_requests: int = option(400, "slow requests queued before the SIGTERM (all must be answered)")
    exact_below: int = option(5000, "the server's --exact-below")
    seed: int = option(0, "seed of the requests and of the second model")
    grace_s: float = option(20.0, "the server's --grace", "--grace")
    watch_s: float = option(0.2, "the server's --watch (how fast it notices a new model)", "--watch")
    max_request_bytes: int = 256 * 1024  # the server's default
    classes: tuple[str, ...] = ()  # corruption classes to run (empty: all)
    min_recall: float = option(0.9, "least mean recall@k against exact scoring of approximate answers, per phase")

    def retriever(self) -> RetrieverConfig:
        """What the started server uses (the versions the oracle expects depend on it)."""
        return RetrieverConfig(exact_below=self.exact_below)


@dataclass
class Row:
    phase: str
    requests: int = 0
    codes: Counter = field(default_factory=Counter)
    wrong: int = 0
    lost: int = 0  # accepted requests that got no answer (anything but a correct status)
    crashes: int = 0
    health: str = ""
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    recall: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def failed(self, min_recall: float) -> bool:
        low = bool(self.recall) and float(np.mean(self.recall)) < min_recall
        return bool(self.wrong or self.lost or self.crashes or low)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out["codes"] = dict(sorted(self.codes.items()))
        out["recall"] = round(float(np.mean(self.recall)), 4) if self.recall else None
        out["notes"] = self.notes[:20]
        return out


# ------------------------------------------------------------------------------------------ the oracle
class Oracle:
    """What a request must get, from exact numpy scoring of the exports the server may answer from."""

    def __init__(self, models: list[ServingModel], config: ChaosConfig) -> None:
        self.config = config
        retriever = config.retriever()
        self.models = {retriever_version(m, retriever): m for m in models}

    def add(self, model: ServingModel) -> str:
        version = retriever_version(model, self.config.retriever())
        self.models[version] = model
        return version

    def expected_code(self, raw: bytes, partitions: dict[str, np.ndarray]) -> tuple[str, Any]:
        from google.protobuf.message import DecodeError

        from ledrec.serve import ledrec_pb2

        limit = self.config.max_request_bytes
        if len(raw) > 4 * limit:
            return "RESOURCE_EXHAUSTED", None
        if len(raw) > limit:
            return "INVALID_ARGUMENT", None
        try:
            request = ledrec_pb2.RecommendRequest.FromString(raw)
        except DecodeError:
            return "INVALID_ARGUMENT", None
        r = self.config.retriever()
        if not 0 < request.k <= r.max_k or len(request.item_ids) > r.max_history:
            return "INVALID_ARGUMENT", request
        if len(request.allowed_item_ids) > r.max_allowed or request.partition not in partitions:
            return "INVALID_ARGUMENT", request
        return "OK", request

    def check(self, request: Any, response: Any) -> tuple[str | None, float | None]:
        """(why the OK answer is wrong, or None; recall@k against exact for an ANN answer, else None)."""
        model = self.models.get(response.model_version)
        if model is None:
            return f"model_version {response.model_version!r} is no model the server was given", None
        catalogue = model.partitions[request.partition]
        history, unknown = model.lookup(request.item_ids)
        if response.unknown_items != unknown:
            return f"unknown_items {response.unknown_items}, expected {unknown}", None
        cold = len(history) == 0
        if response.cold_start != cold:
            return f"cold_start {response.cold_start}, expected {cold}", None
        got = model.indices(np.array([i.item_id for i in response.items], dtype=str))
        scores = np.array([i.score for i in response.items], dtype=np.float64)
        if (got < 0).any():
            return "an item id the model does not have", None
        if len(set(got.tolist())) != len(got):
            return "an item twice", None
        if request.allowed_item_ids:
            candidates = np.intersect1d(model.lookup(request.allowed_item_ids)[0], catalogue)
            exact_path = True
        else:
            candidates, exact_path = catalogue, cold or len(catalogue) < self.config.exact_below
        if request.exclude_seen and not cold:
            candidates = np.setdiff1d(candidates, history)
        want = min(request.k, len(candidates))
        if len(got) != want:
            return f"{len(got)} items, expected {want}", None
        if not np.isin(got, candidates).all():
            return "an item outside the catalogue / allowed list, or of the history", None
        exact = model.scores(model.user_vector(history)).astype(np.float64)  # (I,) every item, exactly
        if not np.allclose(scores, exact[got], rtol=1e-4, atol=1e-4):
            return "scores differ from exact scoring", None
        if np.any(np.diff(scores) > 1e-5):
            return "scores not in descending order", None
        if want == 0:
            return None, None
        top = candidates[np.argsort(-exact[candidates], kind="stable")[:want]]
        kth = exact[top[-1]]
        if exact_path:
            if exact[got].min() < kth - 1e-4 * max(1.0, abs(kth)):
                return "not the exact top-k", None
            return None, None
        return None, len(set(got.tolist()) & set(top.tolist())) / want


# ------------------------------------------------------------------------------------------ requests
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(int(payload))
    if wire == 2:
        return key + _varint(len(payload)) + payload  # type: ignore[arg-type]
    if wire == 5:
        return key + bytes(payload)[:4].ljust(4, b"\0")  # type: ignore[arg-type]
    return key + bytes(payload)[:8].ljust(8, b"\0")  # type: ignore[arg-type]


def _message(partition: str, ids: list[str], k: int, exclude: bool, allowed: list[str]) -> bytes:
    from ledrec.serve import ledrec_pb2

    return ledrec_pb2.RecommendRequest(
        partition=partition, item_ids=ids, k=k, exclude_seen=exclude, allowed_item_ids=allowed
    ).SerializeToString()


UNICODE = ["", "é", "日本語", "🙂🙃", "\u202eevil", "a\x00b", "\ufeff", " ", "x" * 300]


def hostile_requests(model: ServingModel, n: int, seed: int) -> list[tuple[str, bytes]]:
    """``n`` seeded requests as (class, wire bytes), of every kind a fuzzer would send."""
    rng = random.Random(seed)
    ids = model.item_ids.tolist()
    parts = list(model.partitions)

    def known(m: int, partition: str | None = None) -> list[str]:
        pool = model.partitions[partition] if partition is not None else None
        if pool is not None:
            return [ids[int(pool[rng.randrange(len(pool))])] for _ in range(m)]
        return [ids[rng.randrange(len(ids))] for _ in range(m)]

    def valid() -> tuple[str, list[str], int, bool, list[str]]:
        p = rng.choice(parts)
        history = known(rng.randint(1, 30), p if rng.random() < 0.7 else None)
        return p, history, rng.choice([1, 5, 10, 20, 50, 100, rng.randint(1, 1000)]), rng.random() < 0.7, []

    def make(kind: str) -> bytes:
        p, h, k, ex, allowed = valid()
        if kind == "valid":
            return _message(p, h, k, ex, allowed)
        if kind == "cold and unknown ids":
            return _message(
                p, rng.choice([[], [f"nope-{rng.random()}" for _ in range(5)], [rng.choice(UNICODE)]]), k, ex, []
            )
        if kind == "repeated and mixed ids":
            return _message(p, h + h[: rng.randint(1, len(h))] + ["?", rng.choice(UNICODE)], k, ex, [])
        if kind == "allowed lists":
            size = rng.choice([1, 3, 50, 500, 5000])
            return _message(p, h, k, ex, [*known(size), rng.choice(UNICODE)])
        if kind == "k out of range":
            return _message(p, h, rng.choice([0, -1, -(2**31), 1001, 2**31 - 1]), ex, [])
        if kind == "history too long":
            return _message(p, known(rng.choice([1001, 1500, 3000])), k, ex, [])
        if kind == "allowed list too long":
            return _message(p, h, k, ex, ["a"] * 100_001)
        if kind == "unknown partition":
            return _message(rng.choice([*UNICODE[1:], "x" * 200_000, p + "-"]), h, k, ex, [])
        if kind == "oversize":
            return _message(p, h, k, ex, ["y" * 1000] * rng.choice([300, 1500]))  # 0.3 MB or 1.5 MB
        if kind == "wrong wire types":
            fields = [_field(1, 2, p.encode()), *(_field(2, 2, x.encode()) for x in h), _field(3, 0, k)]
            number = rng.choice([1, 2, 3, 4, 5])
            wire = rng.choice([w for w in (0, 1, 2, 5) if w != (0 if number in (3, 4) else 2)])
            fields.append(_field(number, wire, b"\x01\x02\x03\x04\x05\x06\x07\x08" if wire else 7))
            rng.shuffle(fields)
            return b"".join(fields)
        if kind == "invalid utf-8":
            return _field(1, 2, p.encode()) + _field(2, 2, b"\xff\xfe\xfd") + _field(3, 0, k)
        if kind == "unknown fields":
            return _message(p, h, k, ex, []) + _field(99, 2, b"junk") + _field(1000, 0, 5)
        if kind == "truncated":
            raw = _message(p, h, k, ex, [])
            return raw[: rng.randrange(1, len(raw))]
        if kind == "bit flips":
            raw = bytearray(_message(p, h, k, ex, []))
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            return bytes(raw)
        if kind == "random bytes":
            return bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
        raise ValueError(kind)

    # weights: mostly requests a real client sends, every hostile kind well represented
    kinds = {
        "valid": 30, "cold and unknown ids": 6, "repeated and mixed ids": 6, "allowed lists": 6,
        "k out of range": 5, "history too long": 2, "allowed list too long": 1, "unknown partition": 4,
        "oversize": 1, "wrong wire types": 8, "invalid utf-8": 4, "unknown fields": 5, "truncated": 8,
        "bit flips": 8, "random bytes": 6,
    }  # fmt: skip
    names, weights = list(kinds), list(kinds.values())
    return [(kind, make(kind)) for kind in rng.choices(names, weights, k=n)]


# ------------------------------------------------------------------------------------------ the server
class Server:
    """``ledrec serve`` in its own process group, on loopback, with its ready line read."""

    def __init__(self, path: Path, config: ChaosConfig, log: Path) -> None:
        self.path, self.config = path, config
        flags = ["--workers", str(config.workers), "--watch", str(config.watch_s), "--grace", str(config.grace_s)]
        flags += ["--front", config.front]
        flags += ["--exact-below", str(config.exact_below), "--max-request-bytes", str(config.max_request_bytes)]
        self.err = open(log, "a")  # closed in stop()
        t0 = time.monotonic()
        try:  # a first start at a million items builds graphs for minutes; ports: its own (port 0)
            self.proc, ready = start_server(path, *flags, timeout=1800, stderr=self.err)
        except RuntimeError as exc:
            self.err.close()
            raise RuntimeError(f"{exc}; see {log}") from None
        self.start_s = time.monotonic() - t0
        self.port, self.metrics_ports, self.front = ready["port"], ready["metrics_ports"], ready["front"]
        import grpc

        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.call = self.channel.unary_unary(METHOD)

    def pids(self) -> list[int]:
        return _tree(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def health(self) -> str:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            status = health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
            return health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        except Exception as exc:  # the server is gone: say how
            return type(exc).__name__

    def counters(self) -> dict[tuple[str, ...], float]:
        """Every counter sample of every worker, summed: {(name, labels...): value}."""
        out: Counter = Counter()
        for port in self.metrics_ports:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            for m in re.finditer(r"^(ledrec_\w+_total)\{?([^}\s]*)\}? ([0-9.e+]+)$", text, re.M):
                out[(m.group(1), m.group(2))] += float(m.group(3))
        return out

    def reloads(self, result: str) -> float:
        return self.counters().get(("ledrec_reloads_total", f'result="{result}"'), 0.0)

    def stop(self) -> int:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(self.config.grace_s + 30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        self.channel.close()
        self.err.close()
        return rc


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return out


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


# ------------------------------------------------------------------------------------------ phases
class Chaos:
    def __init__(self, config: ChaosConfig, progress: bool = True) -> None:
        self.config, self.progress = config, progress
        self.out = Path(config.out)
        self.rows: list[Row] = []
        self.rng = np.random.default_rng(config.seed)
        self._classes()  # unknown classes: an error before any work

    def say(self, message: str) -> None:
        if self.progress:
            print(f"[chaos] {message}", file=sys.stderr, flush=True)

    # -------------------------------------------------------------- set-up
    def prepare(self) -> None:
        """Two exports to swap between (A: the given model; B: its item vectors and biases permuted), each
        with several catalogues (the given ones, or all items plus two random halves)."""
        self.out.mkdir(parents=True, exist_ok=True)
        base = load_serving_model(self.config.export)
        if len(base.partitions) == 1:
            n = len(base.item_ids)
            half = np.sort(self.rng.permutation(n)[: n // 2])
            rest = np.setdiff1d(np.arange(n), half)
            base = replace(base, partitions={**base.partitions, "half-a": half, "half-b": rest})
        perm = self.rng.permutation(len(base.item_ids))
        vectors = np.ascontiguousarray(base.item_vectors[perm])
        other = ServingModel(
            item_ids=base.item_ids,
            encoder_vectors=vectors,  # tied, as LED
            item_vectors=vectors,
            item_bias=np.ascontiguousarray(base.item_bias[perm]),
            query_map=base.query_map,
            reduce=base.reduce,
            partitions=base.partitions,
            info={"chaos": "A with its item vectors and biases permuted"},
        )
        self.a, self.b = self.out / "exports" / "a", self.out / "exports" / "b"
        for model, path in ((base, self.a), (other, self.b)):
            if path.exists():
                shutil.rmtree(path)
            model.save(path)
        self.models = {"a": ServingModel.load(self.a), "b": ServingModel.load(self.b)}
        self.oracle = Oracle(list(self.models.values()), self.config)
        self.version = {k: retriever_version(m, self.config.retriever()) for k, m in self.models.items()}
        self.link = self.out / "current"
        self._point(self.a)
        self.say(f"exports: {len(base.item_ids)} items, d = {base.dim}, catalogues {list(base.partitions)}")
        # B's graphs built and cached now, as A's are by the first start: the hot swaps test swapping, not
        # building a graph under load (minutes for Gowalla's 41k items at d = 512 on two busy cores)
        load_retriever(self.b, self.config.retriever(), check=False)

    def _point(self, target: Path) -> None:
        tmp = self.link.with_name(".current.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target.resolve())
        os.replace(tmp, self.link)

    # -------------------------------------------------------------- helpers
    def _send(self, server: Server, raws: list[bytes], row: Row, kinds: list[str] | None = None) -> None:
        """Send (up to 16 in flight), check every answer, count codes, wrong answers and recall."""
        import grpc

        from ledrec.serve import ledrec_pb2

        partitions = self.models["a"].partitions
        pending: list[tuple[int, Any]] = []

        def settle(i: int, future: Any) -> None:
            expected, request = self.oracle.expected_code(raws[i], partitions)
            try:
                code, body = "OK", future.result(timeout=60)
            except grpc.RpcError as exc:
                code, body = exc.code().name, exc.details() or ""
            row.requests += 1
            row.codes[code] += 1
            label = kinds[i] if kinds else row.phase
            if code != expected:
                row.wrong += 1
                row.notes.append(f"{label}: got {code}, expected {expected}")
                return
            if code != "OK":
                if len(body) > MAX_DETAILS or "Traceback" in body:
                    row.wrong += 1
                    row.notes.append(f"{label}: unbounded or internal message ({len(body)} chars)")
                return
            why, recall = self.oracle.check(request, ledrec_pb2.RecommendResponse.FromString(body))
            if why:
                row.wrong += 1
                row.notes.append(f"{label}: {why}")
            elif recall is not None:
                row.recall.append(recall)

        for i, raw in enumerate(raws):
            pending.append((i, server.call.future(raw, timeout=60)))
            if len(pending) >= 16:
                settle(*pending.pop(0))
        for item in pending:
            settle(*item)

    def _valid(self, n: int, partition: str | None = None, heavy: bool = False) -> list[bytes]:
        model, rng = self.models["a"], self.rng
        parts = list(model.partitions)
        out = []
        for _ in range(n):
            p = partition if partition is not None else parts[rng.integers(len(parts))]
            pool = model.partitions[p]
            size = 1000 if heavy else int(rng.integers(1, 20))
            history = model.item_ids[pool[rng.integers(0, len(pool), size)]].tolist()
            # heavy: ~10 ms each on the Gowalla export, so 400 queue for seconds and still fit the grace (with
            # 20,000 allowed ids they took ~60 ms each and 400 outlasted a 20 s grace: cut, as designed)
            allowed = model.item_ids[rng.integers(0, len(model.item_ids), 2_000)].tolist() if heavy else []
            out.append(_message(p, history, int(rng.choice([10, 20, 100])), True, allowed))
        return out

    def _row(self, phase: str, server: Server | None) -> Row:
        row = Row(phase)
        if server is not None:
            row.rss_before_mb = _rss_mb(server.pids())
        self.rows.append(row)
        self.say(phase)
        return row

    def _close(self, row: Row, server: Server) -> None:
        if not server.alive():
            row.crashes += 1
            row.notes.append(f"the server exited with status {server.proc.returncode}")
        row.health = server.health()
        if row.health != "SERVING":
            row.wrong += 1
            row.notes.append(f"health {row.health} after the phase")
        row.rss_after_mb = _rss_mb(server.pids())

    def _wait(self, what: str, condition: Any, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        self.say(f"timed out waiting for {what}")
        return False

    # -------------------------------------------------------------- 1. hostile requests
    def hostile(self, server: Server) -> None:
        row = self._row(f"hostile requests ({self.config.requests:,}, seeded)", server)
        before = server.counters()
        pairs = hostile_requests(self.models["a"], self.config.requests, self.config.seed)
        kinds, raws = [k for k, _ in pairs], [r for _, r in pairs]
        self._send(server, raws, row, kinds)
        self._close(row, server)
        after = server.counters()
        counted = Counter()  # what the server counted for Recommend, by code, during this phase
        for (name, labels), value in after.items():
            m = re.search(r'code="(\w+)",method="ledrec\.v1\.Recommender/Recommend"', labels)
            if name == "ledrec_requests_total" and m:
                counted[m.group(1)] += value - before.get((name, labels), 0.0)
        seen = Counter({c: n for c, n in row.codes.items() if c != "RESOURCE_EXHAUSTED"})  # refused by gRPC itself
        if counted != seen:
            row.wrong += 1
            row.notes.append(f"the server counted {dict(counted)}, the client saw {dict(seen)}")
        row.notes.insert(0, f"kinds: {dict(Counter(kinds))}")

    # -------------------------------------------------------------- 2. hot swaps
    def hot_swaps(self, server: Server) -> None:
        import grpc

        from ledrec.serve import ledrec_pb2

        row = self._row(f"hot swaps under load ({self.config.swaps})", server)
        done, lock = threading.Event(), threading.Lock()
        requests = self._valid(500)

        def client(c: int) -> None:
            i = c
            while not done.is_set() and row.requests < 200_000:
                raw = requests[i % len(requests)]
                i += 2
                try:
                    body = server.call(raw, timeout=30)
                except grpc.RpcError as exc:
                    with lock:
                        row.requests += 1
                        row.codes[exc.code().name] += 1
                        row.lost += 1
                        row.notes.append(f"a request failed during the swaps: {exc.code().name}")
                    continue
                response = ledrec_pb2.RecommendResponse.FromString(body)
                _, request = self.oracle.expected_code(raw, self.models["a"].partitions)
                why, recall = self.oracle.check(request, response)
                with lock:
                    row.requests += 1
                    row.codes["OK"] += 1
                    if why:
                        row.wrong += 1
                        row.notes.append(why)
                    elif recall is not None:
                        row.recall.append(recall)
                    seen_versions[response.model_version] += 1

        seen_versions: Counter = Counter()
        threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(2)]
        for t in threads:
            t.start()
        for s in range(self.config.swaps):
            target = "b" if s % 2 == 0 else "a"
            ok_before = server.reloads("ok")
            self._point(self.a if target == "a" else self.b)
            if not self._wait(
                f"swap {s + 1} to {target}", lambda ok=ok_before: server.reloads("ok") >= ok + self.config.workers
            ):
                row.notes.append(f"swap {s + 1}: not every worker reloaded")
                row.wrong += 1
            time.sleep(0.3)  # a while on the new model under load
        done.set()
        for t in threads:
            t.join(60)
        row.notes.insert(0, f"answers by version: {dict(seen_versions)}")
        if self.config.swaps % 2:  # leave A serving
            self._point(self.a)
            self._wait("swap back to a", lambda: self._versions(server) == {self.version["a"]})
        self._close(row, server)

    # -------------------------------------------------------------- 3. corrupt exports at reload
    def corrupt_at_reload(self, server: Server) -> None:
        work, workers = self.out / "broken", self.config.workers
        for name, breaks in self._classes():
            refused = name in corrupt.REFUSED
            row = self._row(f"reload: {name}", server)
            target = corrupt.copy_export(self.a, work / f"reload-{_slug(name)}", with_cache=True)
            breaks(target)
            failed, ok = server.reloads("failed"), server.reloads("ok")
            self._point(target)
            if refused:
                if not self._wait("the refusal", lambda f=failed: server.reloads("failed") >= f + workers):
                    row.wrong += 1
                    row.notes.append("no refused reload was counted")
                expected_version = self.version["a"]
            else:
                if not self._wait("the reload", lambda o=ok: server.reloads("ok") >= o + workers, timeout=600):
                    row.wrong += 1
                    row.notes.append("the rebuilt model was not loaded")
                expected_version = self.oracle.add(ServingModel.load(target))
            if server.reloads("ok") > ok and refused:
                row.wrong += 1
                row.notes.append("a broken export was loaded")
            self._send(server, self._valid(50), row)
            versions = self._versions(server)
            if versions != {expected_version}:
                row.wrong += 1
                row.notes.append(f"answered by {versions}, expected {expected_version}")
            if refused:  # retried only when the files change again: two more polls, no new attempt
                time.sleep(3 * self.config.watch_s + 0.2)
                if server.reloads("failed") != failed + workers:
                    row.wrong += 1
                    row.notes.append("the refused export was retried without a change")
            ok = server.reloads("ok")
            self._point(self.a)
            if not refused:  # the swap back to A is a reload too: wait for every worker's
                self._wait("the swap back to a", lambda o=ok: server.reloads("ok") >= o + workers, timeout=600)
            self._close(row, server)
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(target.parent / f"{target.name}-outside", ignore_errors=True)

    def _versions(self, server: Server) -> set[str]:
        """The model versions of a few answers (enough to reach every worker, most likely)."""
        from ledrec.serve import ledrec_pb2

        raw = self._valid(1)[0]
        return {
            ledrec_pb2.RecommendResponse.FromString(server.call(raw, timeout=10)).model_version
            for _ in range(4 * self.config.workers)
        }

    def _classes(self) -> list[tuple[str, Any]]:
        every = {**corrupt.REFUSED, **corrupt.REBUILT}
        chosen = self.config.classes or tuple(every)
        unknown = set(chosen) - set(every)
        if unknown:
            raise ConfigError(f"--classes: unknown corruption classes {sorted(unknown)}; known: {list(every)}")
        return [(n, every[n]) for n in chosen]

    # -------------------------------------------------------------- 4. corrupt exports at start
    def corrupt_at_start(self) -> None:
        """Refused classes two at a time (each a server start that must fail); cache classes one by one."""
        work = self.out / "broken"
        refused = [(n, f) for n, f in self._classes() if n in corrupt.REFUSED]
        rows = [self._row(f"start: {name}", None) for name, _ in refused]
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda job: self._refused_start(*job, work), zip(refused, rows, strict=True)))
        for name, breaks in self._classes():
            if name in corrupt.REFUSED:
                continue
            row = self._row(f"start: {name}", None)
            target = corrupt.copy_export(self.a, work / f"start-{_slug(name)}", with_cache=True)
            breaks(target)
            server = Server(target, self.config, self.out / "server.log")
            row.rss_before_mb = _rss_mb(server.pids())
            self.oracle.add(ServingModel.load(target))
            self._send(server, self._valid(100), row)
            self._close(row, server)
            server.stop()
            shutil.rmtree(target, ignore_errors=True)

    def _refused_start(self, job: tuple[str, Any], row: Row, work: Path) -> None:
        name, breaks = job
        target = corrupt.copy_export(self.a, work / f"start-{_slug(name)}", with_cache=False)
        breaks(target)
        cmd = [sys.executable, "-m", "ledrec.cli", "serve", str(target), "--port", "0", "--metrics-port", "0"]
        cmd += ["--workers", str(self.config.workers), "--front", self.config.front]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            row.crashes += 1
            row.notes.append("did not exit within 120 s")
            return
        finally:
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(target.parent / f"{target.name}-outside", ignore_errors=True)
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        row.health = f"refused (exit {done.returncode})"
        if done.returncode != 2 or len(lines) != 1 or "Traceback" in done.stderr:
            row.wrong += 1
            row.notes.append(f"exit {done.returncode}, stderr {done.stderr[-300:]!r}")
        elif str(target) not in lines[0]:
            row.wrong += 1
            row.notes.append(f"the message names no file of the export: {lines[0][:200]!r}")
        else:
            row.notes.append(lines[0][:200])

    # -------------------------------------------------------------- 5. kill -9 and restart
    def kill_and_restart(self, server: Server) -> Server:
        row = self._row("kill -9 and restart", server)
        pids = server.pids()
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        gone = self._wait("the workers to exit", lambda: not [p for p in pids if _running(p)], self.config.grace_s + 10)
        if not gone:
            row.crashes += 1
            row.notes.append(f"processes outlived the killed parent: {[p for p in pids if _running(p)]}")
        t0 = time.monotonic()
        fresh = Server(self.link, self.config, self.out / "server.log")
        row.notes.append(f"restart to first ready line: {time.monotonic() - t0:.2f} s")
        self._send(fresh, self._valid(200), row)
        self._close(row, fresh)
        server.channel.close()
        return fresh

    # -------------------------------------------------------------- 6. SIGTERM drain
    def drain(self, server: Server) -> None:
        import grpc

        from ledrec.serve import ledrec_pb2

        row = self._row(f"SIGTERM drain ({self.config.drain_requests} slow requests)", server)
        raws = self._valid(self.config.drain_requests, heavy=True)
        received: list[float] = []
        futures = [server.call.future(raw, timeout=120) for raw in raws]
        for f in futures:  # (a done callback fires on failure too: only answers count)
            f.add_done_callback(lambda f: received.append(time.monotonic()) if f.exception() is None else None)
        self._wait("a first answer", lambda: bool(received), 60)
        sent_term = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        for raw, future in zip(raws, futures, strict=True):
            row.requests += 1
            try:
                response = ledrec_pb2.RecommendResponse.FromString(future.result(timeout=120))
            except grpc.RpcError as exc:
                row.codes[exc.code().name] += 1
                row.lost += 1
                continue
            row.codes["OK"] += 1
            _, request = self.oracle.expected_code(raw, self.models["a"].partitions)
            why, _ = self.oracle.check(request, response)
            if why:
                row.wrong += 1
                row.notes.append(why)
        after = sum(t > sent_term for t in received)
        row.notes.append(f"answered after SIGTERM: {after}, the last {max(received) - sent_term:.1f} s after it")
        try:
            rc = server.proc.wait(self.config.grace_s + 10)
        except subprocess.TimeoutExpired:
            rc = None
        row.health = f"exit {rc}"
        if rc != 0:
            row.crashes += 1
            row.notes.append(f"exit status {rc} after SIGTERM")
        server.channel.close()

    # -------------------------------------------------------------- all
    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.prepare()
        server = Server(self.link, self.config, self.out / "server.log")
        started, front = server.start_s, server.front
        try:
            self.hostile(server)
            self.hot_swaps(server)
            self.corrupt_at_reload(server)
            server = self.kill_and_restart(server)
            self.drain(server)
        finally:
            if server.alive():
                server.stop()
        self.corrupt_at_start()
        ok = not any(r.failed(self.config.min_recall) for r in self.rows)
        return {
            "ok": ok,
            "front": front,
            "seconds": round(time.monotonic() - t0, 1),
            "first_start_s": round(started, 2),
            "export": str(self.config.export),
            "items": len(self.models["a"].item_ids),
            "dim": self.models["a"].dim,
            "partitions": {k: len(v) for k, v in self.models["a"].partitions.items()},
            "config": {k: v for k, v in asdict(self.config).items() if k not in ("export", "out")},
            "rows": [r.summary() for r in self.rows],
        }


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Chaos run on the {result['front']} front, {result['export']} ({result['items']:,} items, d = "
        f"{result['dim']}, catalogues {result['partitions']}), {result['seconds']} s: "
        f"**{'passed' if result['ok'] else 'FAILED'}**",
        "",
        "| class | requests | codes | wrong | lost | crashes | health after | RSS before → after (MB) | recall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        codes = ", ".join(f"{c} {n}" for c, n in r["codes"].items()) or "–"
        recall = "" if r["recall"] is None else f"{r['recall']:.3f}"
        lines.append(
            f"| {r['phase']} | {r['requests']:,} | {codes} | {r['wrong']} | {r['lost']} | {r['crashes']} | "
            f"{r['health']} | {r['rss_before_mb']} → {r['rss_after_mb']} | {recall} |"
        )
    return "\n".join(lines) + "\n"


def run_chaos(config: ChaosConfig, progress: bool = True) -> dict[str, Any]:
    """Run every phase; write chaos.json and chaos.md into ``config.out``; return the result."""
    from ledrec.io import write_json

    result = Chaos(config, progress).run()
    write_json(Path(config.out) / "chaos.json", result)
    (Path(config.out) / "chaos.md").write_text(markdown(result))
    return result
