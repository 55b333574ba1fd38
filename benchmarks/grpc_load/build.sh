#!/usr/bin/env bash
# Build ledrec-load, the native gRPC load generator of `ledrec bench serve --client cpp`, and ledrec-floor (the
# native front's do-nothing server as a program: benchmarks/native_front_choice.py) into
# benchmarks/grpc_load/build/. Optional: the Python generator needs none of this.
# Needs a C++ compiler and gRPC's C++ library; on Debian/Ubuntu:
#   apt-get install g++ pkg-config libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_dir="$here/../../src/ledrec/serve"
build="$here/build"
for tool in g++ pkg-config protoc grpc_cpp_plugin; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found (see the apt-get line at the top of this file)" >&2; exit 1; }
done
pkg-config --exists grpc++ protobuf || { echo "build.sh: gRPC C++ development files not found (libgrpc++-dev)" >&2; exit 1; }
mkdir -p "$build"
protoc -I "$proto_dir" --cpp_out="$build" --grpc_out="$build" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
  "$proto_dir/ledrec.proto"
# shellcheck disable=SC2046  # pkg-config prints several flags
g++ -std=c++17 -O2 -o "$build/ledrec-load.tmp" -I "$build" "$here/load.cc" "$build/ledrec.pb.cc" "$build/ledrec.grpc.pb.cc" \
  $(pkg-config --cflags --libs grpc++ protobuf) -lpthread
mv "$build/ledrec-load.tmp" "$build/ledrec-load"
# shellcheck disable=SC2046
g++ -std=c++17 -O2 -o "$build/ledrec-floor.tmp" -I "$build" "$here/floor.cc" "$build/ledrec.pb.cc" \
  "$build/ledrec.grpc.pb.cc" $(pkg-config --cflags --libs grpc++ protobuf) -lpthread
mv "$build/ledrec-floor.tmp" "$build/ledrec-floor"
echo "$build/ledrec-load"
