"""Native builds beyond the Python extension: the CUDA sources compile with the installed nvcc
(this machine may have no GPU, so they need not run here; test_cuda_kernels_emulated.py runs the
fused kernels on CPU threads), and a LibTorch C++ program links the operator library, CPU or CUDA
build, and gets gradients from the autograd registered in C++."""
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

import matnet_torch
from native_toolchain import CUDA_HOME, CXX_COMPILERS, NVCC, ROOT, requires_nvcc, run

CUDA_SOURCES = sorted((ROOT / "csrc/cuda").glob("*.cu"))


def torch_compile_flags():
    return [f"-I{path}" for path in cpp_extension.include_paths()] + [
        "-std=c++20",
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
    ]


@requires_nvcc
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda path: path.name)
def test_cuda_kernels_compile_with_plain_nvcc(tmp_path, source):
    # The kernel files know nothing of ATen: nvcc alone, no torch headers, the flags of setup.py,
    # for the H100 (sm_90). To PTX: the full front end and optimiser, without the slow assembler
    # (the FORCE_CUDA=1 build runs that).
    run([NVCC, "-std=c++17", "-O3", "--expt-relaxed-constexpr", "-arch=sm_90", "--ptx", source, "-o", tmp_path / "kernels.ptx"])
    assert (tmp_path / "kernels.ptx").stat().st_size > 0


@requires_nvcc
@pytest.mark.parametrize("cxx", CXX_COMPILERS)
def test_cuda_aten_glue_compiles(tmp_path, cxx):
    # A CPU build of torch ships the c10/cuda headers but not the one CMake generates for CUDA
    # builds; it only says the c10_cuda library is shared, so an equivalent is supplied here.
    generated = tmp_path / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    generated.parent.mkdir(parents=True)
    generated.write_text("#define C10_CUDA_BUILD_SHARED_LIBS\n")
    run([cxx, "-fsyntax-only", "-DWITH_CUDA", *torch_compile_flags(), f"-I{tmp_path}", f"-I{CUDA_HOME}/include",
         ROOT / "csrc/cuda/bilinear_cuda.cpp"])


def libtorch_link_flags(library: Path):
    """Linker flags for a LibTorch program using the operator library `library`.

    The program's own run path reaches only its direct dependencies (DT_RUNPATH), not the library's,
    so a CUDA build's libtorch_cuda and libc10_cuda are linked directly, ahead of the library: loaded
    first, they also bring in the CUDA runtime they find through their own run paths.
    """
    torch_lib = Path(torch.__file__).parent / "lib"
    libraries = ["-ltorch", "-ltorch_cpu", "-lc10"]
    if matnet_torch.has_cuda_kernels():
        libraries += ["-ltorch_cuda", "-lc10_cuda"]
    return [f"-L{torch_lib}", "-Wl,--no-as-needed", *libraries, str(library), f"-Wl,-rpath,{torch_lib}:{library.parent}"]


@pytest.mark.parametrize("cxx", CXX_COMPILERS)
def test_libtorch_program_gets_gradients_from_cpp_autograd(tmp_path, cxx):
    program = tmp_path / "bilinear_autograd"
    run([cxx, "-O1", *torch_compile_flags(), f"-I{ROOT / 'csrc/include'}", ROOT / "examples/cpp/bilinear_autograd.cpp",
         "-o", program, *libtorch_link_flags(Path(matnet_torch._library.library_path))])
    result = run([program])
    assert "match the ATen reference" in result.stdout
