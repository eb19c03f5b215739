"""The ``--device`` option of the apps.

API:

    DEVICES = ("cpu", "cuda")                 the choices of --device
    training_device(name, option="--device")  torch.device(name), or UsageError (one line) when
                                              CUDA is asked for and torch sees no GPU, or this
                                              build of matnet_torch has no CUDA kernels
"""
import torch

from ..._library import has_cuda_kernels
from .cli import UsageError

DEVICES = ("cpu", "cuda")


def training_device(name: str, option: str = "--device") -> torch.device:
    """The device to train on; UsageError naming ``option`` if it cannot be used here."""
    if name not in DEVICES:
        raise UsageError(f"{option} must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{option} cuda: torch {torch.__version__} sees no CUDA GPU (torch.cuda.is_available() is False)")
        if not has_cuda_kernels():
            raise UsageError(
                f"{option} cuda: this build of matnet_torch has no CUDA kernels; rebuild it where a CUDA "
                "toolkit is found (or with FORCE_CUDA=1)"
            )
    return torch.device(name)
