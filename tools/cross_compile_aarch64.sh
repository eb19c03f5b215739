#!/usr/bin/env bash
# Cross-compiles the operator library for aarch64 Linux with Debian's g++-aarch64-linux-gnu
# (apt-get install g++-aarch64-linux-gnu), through setup.py itself: the same sources and flags as a
# native build, with $CXX the cross compiler. torch's headers are the same on every architecture,
# so the installed torch's serve.
#
#   bash tools/cross_compile_aarch64.sh OUT
#       compiles every source for aarch64 (with the NEON lane kernels) and links them against empty
#       stand-ins of libtorch, libtorch_cpu and libc10: a check that everything compiles (CI).
#   bash tools/cross_compile_aarch64.sh OUT TORCH_LIB
#       links against the libraries of an aarch64 torch instead (TORCH_LIB: the torch/lib
#       directory of an unpacked aarch64 wheel of the installed torch's version), for running the
#       result on aarch64 (tools/test_aarch64_emulated.sh).
#
# Either way OUT/_C.cpython-<version>-aarch64-linux-gnu.so is the aarch64 operator library.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
CROSS_CXX="${CROSS_CXX:-aarch64-linux-gnu-g++}"
TORCH_LIB="${2:-}"
BUILD="$OUT/build"
mkdir -p "$BUILD"
if [[ -z "$TORCH_LIB" ]]; then
  TORCH_LIB="$BUILD/stand-in-libraries"
  mkdir -p "$TORCH_LIB"
  for library in torch torch_cpu c10; do
    "$CROSS_CXX" -shared -x c++ /dev/null -o "$TORCH_LIB/lib$library.so"
  done
fi
# The link searches the installed (x86-64) torch's library directory too; the linker skips its
# libraries as incompatible and takes those of TORCH_LIB.
CXX="$CROSS_CXX" CC="${CROSS_CXX/g++/gcc}" \
  python setup.py build_ext --build-temp "$BUILD/temp" --build-lib "$BUILD/lib" --library-dirs "$TORCH_LIB" \
  -j "${JOBS:-2}" >"$BUILD/log" 2>&1 || { tail -40 "$BUILD/log"; exit 1; }
python_version=$(python -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
library="$OUT/_C.cpython-$python_version-aarch64-linux-gnu.so"
mv "$BUILD"/lib/matnet_torch/_C*.so "$library"
# The lane kernels of every object are aarch64 code, the NEON variant among them.
file "$library" | grep "ARM aarch64" >/dev/null || { file "$library"; exit 1; }
aarch64-linux-gnu-nm -C "$library" | grep "matnet::cpu::neon::lane_kernels" >/dev/null ||
  { echo "no NEON lane kernels in $library"; exit 1; }
echo "$library"
