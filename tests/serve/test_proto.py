"""The committed gRPC code is what protoc makes of ledrec.proto today."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import parse_lock

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


def test_generated_code_is_the_locked_grpc_tools_and_pyproject_allows_no_older_grpcio():
    """The generated stubs refuse a grpcio older than the grpcio-tools that wrote them: the lock must pin that
    grpcio-tools, and pyproject.toml must not admit an older grpcio."""
    text = (ROOT / "src" / "ledrec" / "serve" / "ledrec_pb2_grpc.py").read_text()
    generated = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", text).group(1)
    assert parse_lock(ROOT / "requirements" / "test.txt")["grpcio-tools"][0] == generated
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (grpcio,) = [Requirement(r) for r in wanted if Requirement(r).name == "grpcio"]
    floors = [Version(s.version) for s in grpcio.specifier if s.operator in (">=", "==")]
    assert floors and max(floors) >= Version(generated), f"pyproject.toml admits {grpcio}, the stubs need {generated}"
