"""Loads the compiled operator library, which registers the ``torch.ops.matnet`` operators."""
import importlib.util

import torch


def _load() -> str:
    spec = importlib.util.find_spec("matnet_torch._C")
    if spec is None or spec.origin is None:
        raise ImportError(
            "matnet_torch: the compiled operator library matnet_torch/_C is missing; build it with "
            "`pip install --no-build-isolation -e .` from the repository root"
        )
    torch.ops.load_library(spec.origin)
    return spec.origin


library_path = _load()


def has_cuda_kernels() -> bool:
    """Whether this build has CUDA kernels (otherwise CUDA tensors get a clear error)."""
    return torch.ops.matnet.has_cuda_kernels()


def cpu_capability() -> str:
    """The CPU kernels in use: "avx512", "avx2", "neon" (lane kernels for that instruction set), "amx"
    (avx512's, with bfloat16 on AMX tiles where that is faster) or "default" (the portable path: one
    large GEMM per product). Chosen at first use from the CPU's features, or forced by the
    environment variable ``MATNET_CPU_CAPABILITY``."""
    return torch.ops.matnet.cpu_capability()


def supported_cpu_capabilities() -> list:
    """The CPU kernels this CPU can run, best first; "default" is always last."""
    return list(torch.ops.matnet.supported_cpu_capabilities())


def set_cpu_capability(name: str) -> None:
    """Forces the CPU kernels ("amx", "avx512", "avx2", "neon" or "default"); a ValueError names the ones this
    CPU supports. For benchmarks and tests; ``MATNET_CPU_CAPABILITY`` does the same for a whole
    process."""
    torch.ops.matnet.set_cpu_capability(name)
