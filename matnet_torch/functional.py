"""Functional API over the ``torch.ops.matnet`` operators."""
from typing import Optional, Sequence

import torch

from . import _library  # noqa: F401  (registers torch.ops.matnet)
from .reference import activation_function

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


def _check_multi_inputs(xs, us, vs, bias, activation) -> None:
    """The argument checks of ``multi_bilinear``, each error naming the operator, the index j and the values."""
    name = "matnet::multi_bilinear"
    if activation not in ACTIVATIONS:
        raise ValueError(f"{name}: unknown activation '{activation}'; expected one of {', '.join(ACTIVATIONS)}")
    if not (len(xs) == len(us) == len(vs)) or len(xs) == 0:
        raise ValueError(f"{name}: expected non-empty xs, us and vs of one length, got {len(xs)}, {len(us)} and {len(vs)}")
    m, n = us[0].size(0), vs[0].size(0)
    for j, (x, u, v) in enumerate(zip(xs, us, vs)):
        if x.dim() < 2 or u.dim() != 2 or v.dim() != 2:
            raise ValueError(
                f"{name}: expected xs[{j}] (..., p, q), us[{j}] (m, p) and vs[{j}] (n, q), got "
                f"{tuple(x.shape)}, {tuple(u.shape)} and {tuple(v.shape)}"
            )
        if x.shape[:-2] != xs[0].shape[:-2]:
            raise ValueError(
                f"{name}: xs[{j}] has leading dimensions {tuple(x.shape[:-2])}, xs[0] has {tuple(xs[0].shape[:-2])}"
            )
        if u.size(1) != x.size(-2):
            raise ValueError(f"{name}: us[{j}].size(1) ({u.size(1)}) must equal xs[{j}].size(-2) ({x.size(-2)})")
        if v.size(1) != x.size(-1):
            raise ValueError(f"{name}: vs[{j}].size(1) ({v.size(1)}) must equal xs[{j}].size(-1) ({x.size(-1)})")
        if (u.size(0), v.size(0)) != (m, n):
            raise ValueError(
                f"{name}: us[{j}].size(0) and vs[{j}].size(0) ({u.size(0)}, {v.size(0)}) must equal those of "
                f"us[0] and vs[0] ({m}, {n})"
            )
    if bias is not None and tuple(bias.shape) != (m, n):
        raise ValueError(f"{name}: expected bias of shape ({m}, {n}), got {tuple(bias.shape)}")


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

    This body composes D ``bilinear`` operators with the identity, then adds the bias and applies σ
    (D = 1 is ``bilinear`` itself): correct and differentiable, but it stores D intermediate results.
    It will dispatch to the fused operator ``torch.ops.matnet.multi_bilinear`` (Σ_j accumulated in
    the block before bias and σ, backward from the saved inputs and Y only) once that lands.
    """
    _check_multi_inputs(xs, us, vs, bias, activation)
    if len(xs) == 1:
        return bilinear(xs[0], us[0], vs[0], bias, activation)
    z = sum(bilinear(x, u, v) for x, u, v in zip(xs, us, vs))
    if bias is not None:
        z = z + bias
    return activation_function(activation)(z)
