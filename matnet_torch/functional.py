"""Functional API over the ``torch.ops.matnet`` operators."""
from typing import Optional

import torch

from . import _library  # noqa: F401  (registers torch.ops.matnet)

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu")


def bilinear(
    x: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    activation: str = "identity",
) -> torch.Tensor:
    """Y_i = σ(U X_i Vᵀ + B) for every matrix X_i of ``x``.

    Args:
        x: (..., p, q), any number of leading batch dimensions (none, or an empty batch, too).
        u: (m, p).
        v: (n, q).
        bias: (m, n) or None.
        activation: "identity", "sigmoid", "tanh" or "relu".

    Returns:
        (..., m, n), contiguous. Differentiable in x, u, v and bias through the fused backward
        operator, which keeps only x and y from the forward.
    """
    return torch.ops.matnet.bilinear(x, u, v, bias, activation)
