"""MultiMatNetLayer: D matrices of their own sizes into one bilinear layer,
Y = σ(Σ_j U_j X^j V_jᵀ + B) (paper eq. 3.1), as an nn.Module."""
import math
from typing import Sequence

import torch
from torch import nn

from .. import functional
from .arguments import activation_name, matrix_shape
from .layer import activation_gain


class MultiMatNetLayer(nn.Module):
    """Maps D inputs X^j (..., p_j, q_j), sharing their leading dimensions, to Y (..., m, n).

    Parameters: ``us[j]`` (m×p_j), ``vs[j]`` (n×q_j) and one shared ``bias`` (m×n, or None).

    Initialisation extends ``MatNetLayer``'s variance-preserving one to the sum: each term
    U_j X^j V_jᵀ has variance g² Var(x) / D when U_j ~ N(0, 1/p_j) and V_j ~ N(0, g²/(D q_j)), so the
    sum of the D independent terms has g² Var(x), as for one input. With D = 1 it is exactly
    ``MatNetLayer``'s initialisation.
    """

    def __init__(
        self,
        in_shapes: Sequence[Sequence[int]],
        out_shape: Sequence[int],
        activation: str = "sigmoid",
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner = type(self).__name__
        if len(in_shapes) == 0:
            raise ValueError(f"{owner}: in_shapes must name at least one input shape, got {list(in_shapes)}")
        self.in_shapes = tuple(matrix_shape(owner, f"in_shapes[{j}]", shape) for j, shape in enumerate(in_shapes))
        self.out_shape = matrix_shape(owner, "out_shape", out_shape)
        self.activation = activation_name(owner, "activation", activation)
        m, n = self.out_shape
        factory = {"device": device, "dtype": dtype}
        self.us = nn.ParameterList(nn.Parameter(torch.empty(m, p, **factory)) for p, _ in self.in_shapes)
        self.vs = nn.ParameterList(nn.Parameter(torch.empty(n, q, **factory)) for _, q in self.in_shapes)
        self.bias = nn.Parameter(torch.empty(m, n, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        gain, count = activation_gain(self.activation), len(self.in_shapes)
        for (p, q), u, v in zip(self.in_shapes, self.us, self.vs):
            nn.init.normal_(u, std=1.0 / math.sqrt(p))
            nn.init.normal_(v, std=gain / math.sqrt(count * q))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(xs) != len(self.in_shapes):
            raise ValueError(f"{type(self).__name__}: expected {len(self.in_shapes)} inputs, got {len(xs)}")
        return functional.multi_bilinear(xs, list(self.us), list(self.vs), self.bias, self.activation)

    def extra_repr(self) -> str:
        return (
            f"in_shapes={list(self.in_shapes)}, out_shape={self.out_shape}, "
            f"activation={self.activation!r}, bias={self.bias is not None}"
        )
