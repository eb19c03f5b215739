"""MatNetLayer: one bilinear layer Y = σ(U X Vᵀ + B) as an nn.Module."""
import math
from typing import Sequence

import torch
from torch import nn

from .. import functional
from .arguments import activation_name, matrix_shape

_GAIN_NAMES = {"identity": "linear", "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}


def activation_gain(activation: str) -> float:
    """g of the variance-preserving initialisation: ``torch.nn.init.calculate_gain`` of the activation."""
    return nn.init.calculate_gain(_GAIN_NAMES[activation])


class MatNetLayer(nn.Module):
    """Maps matrices X (..., p, q) to Y = σ(U X Vᵀ + B) of shape (..., m, n).

    Parameters: ``u`` (m×p), ``v`` (n×q) and ``bias`` (m×n, or None): m·p + n·q + m·n numbers where
    a dense layer on the flattened matrices needs m·n·p·q + m·n.

    Initialisation (variance preserving, like LeCun/Kaiming for the fan-in p·q of each output):
    z_ab = Σ_rc U_ar X_rc V_bc sums p·q products, so with U ~ N(0, 1/p) and V ~ N(0, g²/q), where g
    is ``torch.nn.init.calculate_gain`` of the activation (sigmoid 1, tanh 5/3, relu √2),
    Var(z) = g² Var(x): activations keep their scale through deep stacks instead of shrinking or
    growing by a factor per layer. The rows of U then have unit norm in expectation, which is the
    paper's unit-norm constraint (see ``matnet_torch.regularizers``). The bias starts at zero.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        activation: str = "sigmoid",
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.in_shape = matrix_shape("MatNetLayer", "in_shape", in_shape)
        self.out_shape = matrix_shape("MatNetLayer", "out_shape", out_shape)
        self.activation = activation_name("MatNetLayer", "activation", activation)
        (p, q), (m, n) = self.in_shape, self.out_shape
        factory = {"device": device, "dtype": dtype}
        self.u = nn.Parameter(torch.empty(m, p, **factory))
        self.v = nn.Parameter(torch.empty(n, q, **factory))
        self.bias = nn.Parameter(torch.empty(m, n, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        (p, q) = self.in_shape
        gain = activation_gain(self.activation)
        nn.init.normal_(self.u, std=1.0 / math.sqrt(p))
        nn.init.normal_(self.v, std=gain / math.sqrt(q))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.bilinear(x, self.u, self.v, self.bias, self.activation)

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, out_shape={self.out_shape}, "
            f"activation={self.activation!r}, bias={self.bias is not None}"
        )
