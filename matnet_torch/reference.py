"""Pure-PyTorch reference of the MatNet operators: the ground truth for tests and the baseline of
the benchmarks. Written the way a user would write it, differentiated by autograd."""
from typing import Optional, Sequence

import torch

_ACTIVATIONS = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def activation_function(name: str):
    """The torch function of an activation name, with a clear error for an unknown one."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation '{name}'; expected one of {', '.join(_ACTIVATIONS)}"
        ) from None


def bilinear(
    x: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    activation: str = "identity",
) -> torch.Tensor:
    """σ(U X Vᵀ + B) by torch.matmul broadcasting over the leading dimensions of x."""
    z = u @ x @ v.mT
    if bias is not None:
        z = z + bias
    return activation_function(activation)(z)


def multi_bilinear(
    xs: Sequence[torch.Tensor],
    us: Sequence[torch.Tensor],
    vs: Sequence[torch.Tensor],
    bias: Optional[torch.Tensor] = None,
    activation: str = "identity",
) -> torch.Tensor:
    """σ(Σ_j U_j X^j V_jᵀ + B) by torch.matmul broadcasting over the leading dimensions of each x_j."""
    z = sum(u @ x @ v.mT for x, u, v in zip(xs, us, vs))
    if bias is not None:
        z = z + bias
    return activation_function(activation)(z)
