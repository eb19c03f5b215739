#!/usr/bin/env bash
# Builds the wheel with the one documented command and checks it the way a user gets it: installed
# into a fresh virtual environment that holds only torch (plus pytest and hypothesis to run the
# tests), where the operator, module, data and C++-package tests must pass against the installed
# package, and importing it must load nothing but torch and numpy.
#
#     bash tools/check_wheel.sh          # after tools/setup.sh; work files in build/check_wheel
#
# TORCH=... chooses the torch requirement of the environment (default torch==2.13.0, the version the
# wheel is built against here).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
TORCH="${TORCH:-torch==2.13.0}"
WORK=build/check_wheel
rm -rf "$WORK" && mkdir -p "$WORK"

# The wheel: built against the installed torch, so without build isolation.
"$PYTHON" -m pip wheel --quiet --no-build-isolation --no-deps -w "$WORK/dist" .
WHEEL=$(ls "$WORK"/dist/matnet_torch-*.whl)
echo "built $WHEEL ($(du -k "$WHEEL" | cut -f1) KiB)"
"$PYTHON" - "$WHEEL" <<'PY'
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
required = [r"matnet_torch/_C\..*\.so", r"matnet_torch/include/matnet/matnet\.h", r"matnet_torch/include/matnet/ops\.h",
            r"matnet_torch/include/matnet/layer\.h", r"matnet_torch/share/cmake/matnet_torch/matnet_torchConfig\.cmake",
            r"matnet_torch/pretrained_models/.*\.pt", r"matnet_torch-.*\.dist-info/licenses/LICENSE",
            r"matnet_torch/nn/layer\.py", r"matnet_torch/apps/mnist/train\.py"]
missing = [pattern for pattern in required if not any(re.fullmatch(pattern, name) for name in names)]
sys.exit(f"the wheel lacks {missing}" if missing else 0)
PY

# A fresh environment with torch only; then the wheel, which brings its one other dependency, numpy.
"$PYTHON" -m venv "$WORK/venv"
VENV_PYTHON="$WORK/venv/bin/python"
"$VENV_PYTHON" -m pip install --quiet "$TORCH"
"$VENV_PYTHON" -m pip install --quiet "$WHEEL"
"$VENV_PYTHON" -m pip install --quiet pytest hypothesis
"$VENV_PYTHON" -m pip list --format=freeze | tr '\n' ' ' && echo

# The tests run from a copy outside the checkout, so that `import matnet_torch` is the installed wheel
# (with the two files test_packaging compares the installed version with).
cp -r tests "$WORK/tests"
cp pyproject.toml CITATION.cff "$WORK/"
cd "$WORK"
venv/bin/python - <<'PY'
import sys
import matnet_torch, matnet_torch.nn, matnet_torch.pretrained as pretrained
assert "site-packages" in matnet_torch.__file__, matnet_torch.__file__
extras = sorted(name for name in sys.modules if name.split(".")[0] in ("matplotlib", "skimage", "PIL", "tqdm"))
assert not extras, extras
print(f"imported {matnet_torch.__file__} {matnet_torch.__version__}; CPU kernels {matnet_torch.cpu_capability()}; "
      f"pretrained {pretrained.available()}; no app package loaded")
PY
venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_bilinear.py tests/test_multi_bilinear.py tests/test_dispatcher.py tests/test_errors.py \
    tests/test_special_values.py tests/test_properties.py tests/test_autocast.py tests/test_cpu_capability.py \
    tests/test_compile_export.py tests/test_layer.py tests/test_multi_layer.py tests/test_models.py \
    tests/test_autoencoder.py tests/test_regularizers.py tests/test_data.py tests/test_checkpoint.py \
    tests/test_cmake_package.py tests/test_packaging.py
