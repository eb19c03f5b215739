#!/usr/bin/env bash
# Builds matnet_torch against each torch version pyproject.toml admits, each in a virtual environment
# of its own, and runs the operator and module tests there; prints a Markdown table (the README's,
# "Building from source"). Not part of CI: every torch is a download of 0.2 to 4 GB (with its CUDA
# libraries) and every build compiles the library again.
#
#   bash tools/test_torch_versions.sh WORK [VERSION ...]   # default: the newest release of each minor
#
# WORK holds the environments and the copies of the sources; a second run reuses the environments.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=$(mkdir -p "$1" && cd "$1" && pwd)
shift
VERSIONS=("$@")
[[ ${#VERSIONS[@]} -gt 0 ]] || VERSIONS=(2.11.0 2.12.1 2.13.0 2.14.1)
TESTS=(tests/test_bilinear.py tests/test_multi_bilinear.py tests/test_layer.py)
PYTHON="${PYTHON:-python3}"
# The CPU library only (the tests run on the CPU; PyPI's torch is a CUDA build, which would build the
# CUDA kernels wherever a CUDA toolkit is found).
export MATNET_CPU_ONLY=1

echo "| torch | Python | build | ${TESTS[*]} |"
echo "|---|---|---|---|"
for version in "${VERSIONS[@]}"; do
  venv="$WORK/torch-$version"
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "torch==$version" numpy pytest hypothesis "setuptools>=77" ninja \
      >"$WORK/install-$version.log" 2>&1
  fi
  # The committed sources, built in a copy of their own.
  source="$WORK/source-$version"
  rm -rf "$source" && mkdir -p "$source"
  git -C "$REPO" ls-files -z | (cd "$REPO" && xargs -0 tar -cf -) | tar -xf - -C "$source"
  python_version=$("$venv/bin/python" -c 'import platform; print(platform.python_version())')
  installed=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
  if (cd "$source" && "$venv/bin/python" setup.py build_ext --inplace -j "${JOBS:-2}") >"$WORK/build-$version.log" 2>&1; then
    build="built"
    tests=$(cd "$source" && PYTHONPATH="$source" "$venv/bin/python" -m pytest -q -p no:cacheprovider "${TESTS[@]}" \
      2>&1 | tee "$WORK/tests-$version.log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')
  else
    build="failed (build-$version.log)"
    tests="not run"
  fi
  echo "| $installed | $python_version | $build | $tests |"
done
