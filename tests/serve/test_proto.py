"""The committed gRPC code is what protoc makes of ledrec.proto today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_current(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "src",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            "src/ledrec/serve/ledrec.proto",
        ],
        cwd=ROOT,
        check=True,
    )
    for name in ("ledrec_pb2.py", "ledrec_pb2_grpc.py"):
        fresh = (tmp_path / "ledrec" / "serve" / name).read_text()
        assert fresh == (ROOT / "src" / "ledrec" / "serve" / name).read_text(), (
            f"{name} is stale: bash scripts/gen_proto.sh"
        )
