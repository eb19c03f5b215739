#!/usr/bin/env bash
# Builds the operator library with clang in a copy of this checkout (no OpenMP there: the kernels
# run on csrc/cpu/parallel.h's own threads) and runs the operator, gradient, thread and module tests
# against that build: the check that the kernels stay compiler-portable. CI runs it where clang is
# installed (apt-get install clang).
#
#   bash tools/test_clang_build.sh WORK [TEST_FILE ...]     # default: the operator tests below
#
# WORK/source is the copy (tracked and untracked files that git does not ignore), built in place.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mkdir -p "$1" && cd "$1" && pwd)
shift
TESTS=("$@")
if [[ ${#TESTS[@]} -eq 0 ]]; then
  TESTS=(tests/test_bilinear.py tests/test_multi_bilinear.py tests/test_cpu_capability.py tests/test_threads.py
         tests/test_special_values.py tests/test_drop_in.py tests/test_layer.py tests/test_amx.py)
fi
SOURCE="$WORK/source"
rm -rf "$SOURCE" && mkdir -p "$SOURCE"
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$SOURCE"
cd "$SOURCE"
CC="${CLANG:-clang}" CXX="${CLANGXX:-clang++}" python setup.py -q build_ext --inplace >"$WORK/build.log" 2>&1 ||
  { tail -30 "$WORK/build.log"; echo "the clang build failed (log: $WORK/build.log)"; exit 1; }
library=$(ls matnet_torch/_C*.so)
# The compiler that built it is recorded in the library's .comment section.
grep -qa "clang version" "$library" || { echo "$library was not built by clang"; exit 1; }
echo "built $library with $("${CLANGXX:-clang++}" --version | head -1)"
loaded=$(PYTHONPATH="$SOURCE" python -c 'from matnet_torch import _library; print(_library.library_path)')
[[ "$loaded" == "$SOURCE"/* ]] || { echo "python imports $loaded, not the clang build"; exit 1; }
PYTHONPATH="$SOURCE" python -m pytest -q -p no:cacheprovider "${TESTS[@]}"
