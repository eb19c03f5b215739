#!/usr/bin/env bash
# Runs the operator, gradient and module tests on aarch64 under user-mode emulation, on an x86-64
# Debian machine: an aarch64 Python (Debian bookworm's python3.11, unpacked from its packages), the
# PyPI aarch64 torch wheel (with its CUDA libraries, which it loads though no GPU is used), and the
# operator library cross-compiled against it (tools/cross_compile_aarch64.sh).
#
#   apt-get install qemu-user debootstrap g++-aarch64-linux-gnu
#   bash tools/test_aarch64_emulated.sh WORK [TORCH_VERSION]      # default: the installed torch's
#
# WORK holds the downloads and the root (about 5 GB); a second run reuses them. The result of the
# run is in the README ("Building from source").
#
# Two things qemu-user 7.2 (bookworm) needs for `import torch`: it passes the host's x86
# /proc/cpuinfo through, where torch's CPU detection (pytorch/cpuinfo) finds no ARM processor and
# dereferences NULL (SIGSEGV in import torch); and oneDNN reads MIDR_EL1 from sysfs. Files under
# the emulated root ($QEMU_LD_PREFIX) take precedence over the host's, so the root carries an
# arm64 /proc/cpuinfo and midr_el1 of a Neoverse N1, which is also the CPU qemu emulates.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=$(mkdir -p "$1" && cd "$1" && pwd)
TORCH_VERSION="${2:-$(python -c 'import torch; print(torch.__version__.split("+")[0])')}"
ROOT="$WORK/arm64-root"
SITE="$WORK/site-$TORCH_VERSION"
export PIP_CONFIG_FILE=/dev/null  # PyPI itself, whatever this machine's pip configuration says
PLATFORMS=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_25 manylinux_2_17 manylinux2014; do
  PLATFORMS+=(--platform "${tag}_aarch64")
done
pip_aarch64() {
  python -m pip "$@" "${PLATFORMS[@]}" --only-binary=:all: --python-version 3.11 --index-url https://pypi.org/simple
}

# 1. An aarch64 Python: debootstrap's first stage downloads and unpacks the base packages (the second
#    stage would run aarch64 programs, so it is skipped); Python's packages are unpacked by hand.
if [[ ! -x "$ROOT/usr/bin/python3.11" ]]; then
  debootstrap --arch=arm64 --foreign --variant=minbase --include=python3,libpython3.11 bookworm "$ROOT" \
    http://deb.debian.org/debian
  for package in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$package" "$ROOT"; done
fi
mkdir -p "$ROOT/proc"
python - "$ROOT/proc/cpuinfo" <<'EOF'
import sys
processor = """processor\t: {}
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

"""
open(sys.argv[1], "w").write("".join(processor.format(i) for i in range(2)))
EOF
for cpu in 0 1; do
  mkdir -p "$ROOT/sys/devices/system/cpu/cpu$cpu/regs/identification"
  echo 0x00000000413fd0c1 >"$ROOT/sys/devices/system/cpu/cpu$cpu/regs/identification/midr_el1"
done

# 2. torch and the test dependencies for aarch64, unpacked into one directory for PYTHONPATH.
#    torch's own requirements, but triton (not imported here), and nvidia-nccl-cu13 unpinned: the
#    2.13.0 wheel pins a version PyPI has for x86-64 only.
if [[ ! -d "$SITE/torch" ]]; then
  pip_aarch64 download --quiet --no-deps -d "$WORK/wheels" "torch==$TORCH_VERSION"
  wheel=$(ls "$WORK"/wheels/torch-"$TORCH_VERSION"-*aarch64.whl)
  mapfile -t requirements < <(python - "$wheel" <<'PY'
import sys, zipfile
from packaging.requirements import Requirement
with zipfile.ZipFile(sys.argv[1]) as wheel:
    metadata = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    lines = wheel.read(metadata).decode().splitlines()
for line in lines:
    if not line.startswith("Requires-Dist: "):
        continue
    requirement = Requirement(line.removeprefix("Requires-Dist: "))
    if "extra" in str(requirement.marker) or requirement.name == "triton":
        continue
    if requirement.name == "nvidia-nccl-cu13":
        requirement.specifier = ""
    requirement.marker = None
    print(requirement)
PY
)
  # The requirements first, then the wheel without its own (pinned) ones.
  pip_aarch64 install --quiet --target "$SITE" "${requirements[@]}" numpy pytest hypothesis
  pip_aarch64 install --quiet --no-deps --target "$SITE" "$wheel"
fi

# 3. The operator library, cross-compiled against that torch, beside a copy of the Python package.
rm -rf "$WORK/package" && mkdir -p "$WORK/package"
tar --exclude='*.so' --exclude=__pycache__ -cf - matnet_torch | tar -xf - -C "$WORK/package"
bash tools/cross_compile_aarch64.sh "$WORK/library" "$SITE/torch/lib" >/dev/null
cp "$WORK"/library/_C*.so "$WORK/package/matnet_torch/"

# 4. The tests, in the emulated Python (subprocesses it starts are x86 programs' business: the
#    tests that start Python again are not among these). PYTHONSAFEPATH: the current directory (the
#    repository, whose matnet_torch has no aarch64 library) is not put ahead of $WORK/package.
PYTHONSAFEPATH=1 QEMU_CPU=neoverse-n1 QEMU_LD_PREFIX="$ROOT" PYTHONPATH="$WORK/package:$SITE" \
  qemu-aarch64 "$ROOT/usr/bin/python3.11" -m pytest -q -p no:cacheprovider --rootdir "$REPO" \
  -k "not variable" \
  "$REPO/tests/test_bilinear.py" "$REPO/tests/test_multi_bilinear.py" "$REPO/tests/test_layer.py" \
  "$REPO/tests/test_cpu_capability.py" "$REPO/tests/test_threads.py"
