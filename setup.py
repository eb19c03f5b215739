"""Builds matnet_torch and its operator library matnet_torch/_C.

The C++ library is always built. Its CUDA kernels are built when the installed torch has CUDA and a
CUDA toolkit is found, or when FORCE_CUDA=1, and not when MATNET_CPU_ONLY=1; never by whether a GPU
is visible. The package metadata (name, version, dependencies, commands) is in pyproject.toml.
Install with
    pip install --no-build-isolation -e .
"""
import glob
import os
import shlex
import subprocess

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def cuda_choice():
    """(build CUDA kernels?, the reason), decided from the toolchain only."""
    if os.environ.get("MATNET_CPU_ONLY", "0") == "1":
        return False, "MATNET_CPU_ONLY=1"
    if os.environ.get("FORCE_CUDA", "0") == "1":
        return True, "FORCE_CUDA=1"
    if torch.version.cuda is None:
        return False, f"the installed torch {torch.__version__} has no CUDA"
    if CUDA_HOME is None:
        return False, "no CUDA toolkit found (set CUDA_HOME)"
    return True, f"torch {torch.__version__} has CUDA {torch.version.cuda} and a toolkit is at {CUDA_HOME}"


def openmp_flags():
    """-fopenmp where the compiler targets the OpenMP runtime torch itself loads, else nothing.

    torch's OpenMP builds (the PyPI wheels) ship libgomp, which GCC's -fopenmp targets; clang's
    -fopenmp targets libomp, a second runtime whose threads torch.set_num_threads does not reach.
    Without the flag csrc/cpu/parallel.h starts threads of its own, torch.get_num_threads() of them.
    The compiler is the one BuildExtension runs: $CXX, else c++.
    """
    if not torch.backends.openmp.is_available():
        return []
    compiler = shlex.split(os.environ.get("CXX", "c++"))
    macros = subprocess.run(compiler + ["-dM", "-E", "-x", "c++", os.devnull], capture_output=True, text=True).stdout
    is_gcc = "#define __GNUC__" in macros and "#define __clang__" not in macros
    return ["-fopenmp"] if is_gcc else []


def sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", pattern)))


def operator_library():
    with_cuda, reason = cuda_choice()
    print(f"matnet_torch: {'building' if with_cuda else 'not building'} CUDA kernels: {reason}")
    # cpu/lanes/ holds one translation unit per instruction set and cpu/amx/ the AMX one, each compiled
    # for its ISA by a target pragma (so the files build in parallel and the others stay portable).
    common = (
        sources("*.cpp")
        + sources("cpu/*.cpp")
        + sources("cpu/lanes/*.cpp")
        + sources("cpu/amx/*.cpp")
        + sources("meta/*.cpp")
        + sources("fallbacks/*.cpp")
        + sources("autograd/*.cpp")
        + sources("autocast/*.cpp")
        + sources("api/*.cpp")
    )
    # No debug information unless MATNET_DEBUG_INFO=1: it costs about 40 % of the build time (the
    # torch headers' templates) and most of the library's size.
    debug_info = "-g" if os.environ.get("MATNET_DEBUG_INFO", "0") == "1" else "-g0"
    openmp = openmp_flags()
    print(f"matnet_torch: threads through {'OpenMP (-fopenmp)' if openmp else 'csrc/cpu/parallel.h, no OpenMP'}")
    cxx_flags = ["-O3", debug_info, *openmp, "-fno-math-errno", "-fno-trapping-math"]
    if with_cuda:
        extension = CUDAExtension(
            "matnet_torch._C",
            common + ["csrc/cuda/bilinear_cuda.cpp"] + sources("cuda/*.cu"),
            define_macros=[("WITH_CUDA", None)],
            # -lineinfo: source lines in Nsight Compute profiles, at no cost in speed.
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]},
            extra_link_args=openmp,
        )
    else:
        extension = CppExtension(
            "matnet_torch._C",
            common + ["csrc/cuda/missing_cuda.cpp"],
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=openmp,
        )
    # The library holds only operator registrations: it needs libtorch, not the Python bindings,
    # so that LibTorch C++ programs can link it too. Python loads it with torch.ops.load_library.
    extension.libraries = [lib for lib in extension.libraries if lib != "torch_python"]
    return extension


setup(
    # The C++ API ships inside the package: the public headers (csrc/include, installed as
    # matnet_torch/include) and the CMake package config (matnet_torch/share/cmake); the trained
    # models of matnet_torch.pretrained are data files of the package.
    packages=find_packages(include=["matnet_torch", "matnet_torch.*"]) + ["matnet_torch.include"],
    package_dir={"matnet_torch.include": "csrc/include"},
    package_data={
        "matnet_torch": ["share/cmake/matnet_torch/*.cmake", "pretrained_models/*.pt"],
        "matnet_torch.include": ["matnet/*.h"],
    },
    ext_modules=[operator_library()],
    cmdclass={"build_ext": BuildExtension},
)
