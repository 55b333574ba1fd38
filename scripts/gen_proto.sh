#!/usr/bin/env bash
# Regenerate the gRPC Python code from src/ledrec/serve/ledrec.proto (needs grpcio-tools: pip install -e .[dev]).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-src}"
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m grpc_tools.protoc -I src --python_out="$out" --grpc_python_out="$out" src/ledrec/serve/ledrec.proto
