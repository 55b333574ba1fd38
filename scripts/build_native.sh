#!/usr/bin/env bash
# Build the native serving front, ledrec.serve._native (src/ledrec/serve/native/), into src/ledrec/serve/:
# gRPC C++ (Debian's libgrpc++-dev, libprotobuf-dev, protobuf-compiler-grpc: installed here when missing and
# this runs as root with apt-get), hnswlib's headers from the sdist of exactly the hnswlib the lock installs
# (hash-checked: one graph file serves both fronts), pybind11 from the lock. Called by bootstrap.sh; cheap when
# nothing changed (a stamp of the sources, the lock, the compiler and gRPC). Where it cannot build, it says why
# in one line and exits 0: `ledrec serve` then serves on the Python front and says so.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py=.venv/bin/python
src=src/ledrec/serve/native
build=build/native
lock="${1:-requirements/test.txt}"
say() { echo "build_native.sh: $*" >&2; }
missing() {
  for tool in g++ pkg-config protoc grpc_cpp_plugin; do command -v "$tool" >/dev/null || return 0; done
  pkg-config --exists grpc++ protobuf || return 0
  [ "$(g++ -print-file-name=libgrpc++_reflection.so)" != libgrpc++_reflection.so ] || return 0  # (found: a path)
  return 1
}
if missing; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing gRPC C++ (libgrpc++-dev, libprotobuf-dev, protobuf-compiler-grpc) for the native front"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ pkg-config libgrpc++-dev \
      libprotobuf-dev protobuf-compiler protobuf-compiler-grpc >/dev/null) || true
  fi
  if missing; then
    say "not built: gRPC C++ is missing (as root: apt-get install g++ pkg-config libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc); ledrec serve uses the Python front"
    exit 0
  fi
fi
suffix="$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
out="src/ledrec/serve/_native$suffix"
hnswlib_lock="$(awk '/^hnswlib==/ {keep = 1; print; next} keep && /^ / {print; next} {keep = 0}' "$lock")"
stamp="$( { cat "$src"/*.cc "$src"/*.h src/ledrec/serve/ledrec.proto "$0"; echo "$hnswlib_lock"; g++ --version;
  pkg-config --modversion grpc++ protobuf; "$py" -c 'import pybind11; print(pybind11.__version__)'; } | sha256sum)"
if [ -f "$out" ] && [ -f "$build/stamp" ] && [ "$(cat "$build/stamp")" = "$stamp" ]; then
  exit 0
fi
say "building the native front (a minute)"
rm -rf "$build"
mkdir -p "$build/sdist" "$build/include" "$build/gen" "$build/obj"
# hnswlib's headers: from the sdist the lock pins, its sha256 checked by pip
echo "$hnswlib_lock" > "$build/hnswlib.txt"
"$py" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation --require-hashes \
  -r "$build/hnswlib.txt" -d "$build/sdist" 2> >(grep -v "^WARNING: Location" >&2)
tar -xzf "$build"/sdist/hnswlib-*.tar.gz -C "$build/sdist"
cp -r "$build"/sdist/hnswlib-*/hnswlib "$build/include/hnswlib"
protoc -I src/ledrec/serve --cpp_out="$build/gen" --grpc_out="$build/gen" \
  --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" src/ledrec/serve/ledrec.proto
pybind="$("$py" -m pybind11 --includes)"
common=(-std=c++17 -fPIC -fvisibility=hidden -I "$src" -I "$build/include" -I "$build/gen")
# hnswlib's code with hnswlib's own flags (its setup.py: -O3 -march=native), as the Python hnswlib that
# writes the graphs was built: the same distance functions, the same walk through the graph
g++ "${common[@]}" -O3 -march=native -c "$src/model.cc" -o "$build/obj/model.o"
# the served arithmetic: no fused multiply-add (numpy multiplies, then adds)
g++ "${common[@]}" -O3 -march=native -ffp-contract=off -c "$src/kernel.cc" -o "$build/obj/kernel.o"
# shellcheck disable=SC2046,SC2086  # pkg-config and pybind11 print several flags
g++ "${common[@]}" -O2 $pybind $(pkg-config --cflags grpc++ protobuf) -c "$src/server.cc" -o "$build/obj/server.o"
# shellcheck disable=SC2046,SC2086
g++ "${common[@]}" -O2 $pybind $(pkg-config --cflags grpc++ protobuf) -c "$src/module.cc" -o "$build/obj/module.o"
for f in ledrec.pb ledrec.grpc.pb; do
  # shellcheck disable=SC2046
  g++ "${common[@]}" -O2 $(pkg-config --cflags grpc++ protobuf) -c "$build/gen/$f.cc" -o "$build/obj/$f.o"
done
# shellcheck disable=SC2046
g++ -shared -o "$build/_native.so" "$build"/obj/*.o $(pkg-config --libs grpc++ protobuf) -lgrpc++_reflection -lpthread
mv "$build/_native.so" "$out"
echo "$stamp" > "$build/stamp"
say "built $out"
