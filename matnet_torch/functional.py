"""Functional API over the ``torch.ops.matnet`` operators."""
from typing import Optional, Sequence

import torch

from . import _autograd

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu")


def _under_torch_func() -> bool:
    """Whether a torch.func transform (grad, vjp, jvp, vmap, ...) is running: they need the Python
    autograd Functions of _autograd.py, which cost a few microseconds more per call than the
    operators' C++ autograd that everything else (first and second derivatives, torch.compile,
    export, LibTorch) uses. torch has no public query for it; this is the one torch.autograd.Function
    itself asks. torch.compile traces the operators themselves."""
    return not torch.compiler.is_compiling() and torch._C._are_functorch_transforms_active()


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
        operator, which keeps only x and y from the forward; twice differentiable (create_graph=True),
        and under the torch.func transforms (grad, vjp, jacrev, jvp, jacfwd, vmap).
    """
    if _under_torch_func():
        return _autograd.bilinear(x, u, v, bias, activation)
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
        (..., m, n). Differentiable in every x_j, u_j, v_j and bias, twice, and under torch.func.

    Backward through the fused operator ``torch.ops.matnet.multi_bilinear_backward``, which keeps
    only the inputs and y from the forward. Errors name the input: ``us[2].size(1) (14) must equal
    xs[2].size(-2) (15)``.
    """
    if _under_torch_func():
        return _autograd.multi_bilinear(list(xs), list(us), list(vs), bias, activation)
    return torch.ops.matnet.multi_bilinear(list(xs), list(us), list(vs), bias, activation)
