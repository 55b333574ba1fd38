"""Wall time and peak resident memory of a piece of work, for the per-stage tables of long jobs.

Memory is sampled from /proc for this process and all its descendants (a Spark JVM and its Python
workers count too), every ``interval`` seconds on a background thread; the process's own high-water mark
(``ru_maxrss``) bounds what a sample between two ticks could miss, but it never goes down, so a stage
reports the larger of its sampled peak and the process peak only when that peak was reached during it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def tree_rss_kib(root: int | None = None) -> int:
    """Resident memory (KiB) of process ``root`` (default: this one) and all its descendants."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


@contextlib.contextmanager
def measured(record: dict[str, Any], interval: float = 0.25) -> Iterator[dict[str, Any]]:
    """Fill ``record`` with ``wall_s`` and ``peak_rss_gib`` (process tree) of the ``with`` block."""
    peak = [tree_rss_kib()]
    high_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], tree_rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    sampler.start()
    try:
        yield record
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], tree_rss_kib())
        high_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        if high_after > high_before:  # this process reached a new high during the block
            peak[0] = max(peak[0], high_after)
        record["wall_s"] = round(time.perf_counter() - start, 2)
        record["peak_rss_gib"] = round(peak[0] / 2**20, 3)


def run_measured(cmd: list[str], stderr_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run a command as a child process; its stdout, exit status, wall time and the peak resident memory of
    its whole process tree (sampled every 0.5 s). stderr goes to ``stderr_path`` (or is captured)."""
    import subprocess

    start = time.perf_counter()
    with open(stderr_path, "w") if stderr_path else contextlib.nullcontext(subprocess.PIPE) as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        peak = [0]

        def sample() -> None:
            while proc.poll() is None:
                peak[0] = max(peak[0], tree_rss_kib(proc.pid))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, captured = proc.communicate()
        sampler.join()
    return {
        "returncode": proc.returncode,
        "stdout": out,
        "stderr": captured or "",
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_gib": round(peak[0] / 2**20, 2),
    }
