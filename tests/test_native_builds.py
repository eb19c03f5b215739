"""Native builds beyond the Python extension: the CUDA sources compile with the installed nvcc
(this machine has no GPU, so they cannot run here), and a LibTorch C++ program links the operator
library and gets gradients from the autograd registered in C++."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

import matnet_torch

ROOT = Path(__file__).resolve().parents[1]
# cpp_extension.CUDA_HOME is None under a CPU build of torch, so find the toolkit here:
# $CUDA_HOME, else /usr/local/cuda, else the parent of the nvcc on PATH.
def find_cuda_home():
    for candidate in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return Path(candidate)
    nvcc = shutil.which("nvcc")
    return Path(nvcc).resolve().parents[1] if nvcc else None


CUDA_HOME = find_cuda_home()
NVCC = CUDA_HOME / "bin" / "nvcc" if CUDA_HOME else None
requires_nvcc = pytest.mark.skipif(NVCC is None, reason="no CUDA toolkit (nvcc) found")
CXX = shutil.which("g++") or shutil.which("c++")


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result


def torch_compile_flags():
    return [f"-I{path}" for path in cpp_extension.include_paths()] + [
        "-std=c++20",
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
    ]


@requires_nvcc
def test_cuda_kernels_compile_with_plain_nvcc(tmp_path):
    # The kernel file knows nothing of ATen: nvcc alone, no torch headers.
    run([NVCC, "-std=c++17", "-O2", "-c", ROOT / "csrc/cuda/bilinear_kernels.cu", "-o", tmp_path / "kernels.o"])
    assert (tmp_path / "kernels.o").stat().st_size > 0


@requires_nvcc
def test_cuda_aten_glue_compiles(tmp_path):
    # A CPU build of torch ships the c10/cuda headers but not the one CMake generates for CUDA
    # builds; it only says the c10_cuda library is shared, so an equivalent is supplied here.
    generated = tmp_path / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    generated.parent.mkdir(parents=True)
    generated.write_text("#define C10_CUDA_BUILD_SHARED_LIBS\n")
    run([CXX, "-fsyntax-only", "-DWITH_CUDA", *torch_compile_flags(), f"-I{tmp_path}", f"-I{CUDA_HOME}/include",
         ROOT / "csrc/cuda/bilinear_cuda.cpp"])


@pytest.mark.skipif(CXX is None, reason="no C++ compiler")
def test_libtorch_program_gets_gradients_from_cpp_autograd(tmp_path):
    library = Path(matnet_torch._library.library_path)
    torch_lib = Path(torch.__file__).parent / "lib"
    program = tmp_path / "bilinear_autograd"
    run([CXX, "-O1", *torch_compile_flags(), f"-I{ROOT / 'csrc/include'}", ROOT / "examples/cpp/bilinear_autograd.cpp", "-o", program,
         f"-L{torch_lib}", "-Wl,--no-as-needed", str(library), "-ltorch", "-ltorch_cpu", "-lc10",
         f"-Wl,-rpath,{torch_lib}:{library.parent}"])
    result = run([program])
    assert "match the ATen reference" in result.stdout
