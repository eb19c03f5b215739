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
