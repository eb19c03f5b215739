"""The compilers the native-build tests use: the CUDA toolkit (found without asking torch, whose
CUDA_HOME is None under a CPU build) and the host C++ compilers: GCC (else the system's c++), and
clang where it is installed, so that a C++ program built with either is tested."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def find_cuda_home():
    """$CUDA_HOME, else /usr/local/cuda, else the parent of the nvcc on PATH; None without a toolkit."""
    for candidate in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return Path(candidate)
    nvcc = shutil.which("nvcc")
    return Path(nvcc).resolve().parents[1] if nvcc else None


CUDA_HOME = find_cuda_home()
NVCC = CUDA_HOME / "bin" / "nvcc" if CUDA_HOME else None
CXX = shutil.which("g++") or shutil.which("c++")
requires_nvcc = pytest.mark.skipif(NVCC is None, reason="no CUDA toolkit (nvcc) found")
# Every C++ compiler found, one pytest parameter each, for the tests that build with each (none: the
# tests skip).
CXX_COMPILERS = [
    pytest.param(compiler, id=Path(compiler).name) for compiler in dict.fromkeys([CXX, shutil.which("clang++")]) if compiler
]


def run(command, **kwargs):
    """Runs command; fails the test with its output if it exits non-zero."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result
