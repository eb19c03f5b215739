"""Functional API over the ``torch.ops.matnet`` operators."""
from typing import Optional, Sequence

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


def multi_bilinear(
    xs: Sequence[torch.Tensor],
    us: Sequence[torch.Tensor],
    vs: Sequence[torch.Tensor],
    bias: Optional[torch.Tensor] = None,
    activation: str = "identity",
) -> torch.Tensor:
    """Y_i = σ(Σ_j U_j X_i^j V_jᵀ + B): D inputs of their own sizes into one layer (paper eq. 3.1).

    Args:
        xs: D ≥ 1 tensors, xs[j] of shape (..., p_j, q_j), all with the same leading dimensions.
        us: us[j] of shape (m, p_j).
        vs: vs[j] of shape (n, q_j).
        bias: (m, n) or None.
        activation: "identity", "sigmoid", "tanh" or "relu".

    Returns:
        (..., m, n). Differentiable in every x_j, u_j, v_j and bias.

    Backward through the fused operator ``torch.ops.matnet.multi_bilinear_backward``, which keeps
    only the inputs and y from the forward. Errors name the input: ``us[2].size(1) (14) must equal
    xs[2].size(-2) (15)``.
    """
    return torch.ops.matnet.multi_bilinear(list(xs), list(us), list(vs), bias, activation)
