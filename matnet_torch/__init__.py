"""matnet_torch: Matrix Neural Networks (Gao, Guo and Wang) for PyTorch.

Y = σ(U X Vᵀ + B) over batches of matrices, as fused C++/CUDA operators registered with the
PyTorch dispatcher (``torch.ops.matnet``), with modules, models, regularisers and training tools.
"""
from ._library import cpu_capability, has_cuda_kernels, set_cpu_capability, supported_cpu_capabilities
from .cmake import cmake_prefix_path
from .functional import ACTIVATIONS, bilinear, multi_bilinear
from .version import __version__

__all__ = [
    "ACTIVATIONS",
    "bilinear",
    "cmake_prefix_path",
    "cpu_capability",
    "has_cuda_kernels",
    "multi_bilinear",
    "nn",
    "reference",
    "set_cpu_capability",
    "supported_cpu_capabilities",
]


def __getattr__(name):
    # nn, reference and the tools import lazily so `import matnet_torch` stays cheap.
    if name in ("nn", "reference"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
