"""``ledrec look`` as a child process, for tests, benchmarks and the screenshot script: started on port 0,
its URL read from its ready line (nothing picks a "free" port and hopes it stays free), stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from typing import IO, Any

from ledrec.serve.client import stop_server

__all__ = ["start_look", "stop_server"]


def start_look(
    path: str | os.PathLike[str], *flags: str, timeout: float = 120, stderr: int | IO[Any] | None = subprocess.PIPE
) -> tuple[subprocess.Popen, dict[str, Any]]:
    """``ledrec look PATH FLAGS`` in its own process group (``--port 0`` unless ``flags`` name a port) and its
    ready line (``url``, ``port``, …). RuntimeError, with what it said on stderr when that was piped, when it
    exits or stays silent for ``timeout`` seconds."""
    cmd = [sys.executable, "-m", "ledrec.cli", "look", str(path), *flags]
    cmd += [] if "--port" in flags else ["--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
    try:
        if not select.select([proc.stdout], [], [], timeout)[0]:
            raise RuntimeError(f"ledrec look did not print its ready line within {timeout:.0f} s")
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"ledrec look exited with status {proc.wait(30)} before serving")
        return proc, json.loads(line)
    except RuntimeError as exc:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        said = proc.stderr.read().strip() if stderr == subprocess.PIPE and proc.stderr else ""
        proc.wait()
        raise RuntimeError(f"{exc}{': ' + said[-2000:] if said else ''}") from None
