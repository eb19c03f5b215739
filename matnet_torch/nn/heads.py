"""Classification heads of a MatNet (paper eqs. 2.4–2.7): matrices X (..., p, q) to K logits.

Both return logits, not probabilities: the softmax lives in the loss (``F.cross_entropy``), whose
gradient with respect to the logits is softmax(s) − t (paper 6.2).
"""
import math
from typing import Sequence

import torch
from torch import nn

from .arguments import matrix_shape, positive_count


class VectorizedSoftmaxHead(nn.Linear):
    """Case 3 (paper eq. 2.6), the paper's MNIST head: s_i = W vec(X_i) + b, K logits per matrix.

    An ``nn.Linear`` on the flattened matrix, so its parameters are ``weight`` (K × p·q) and ``bias``
    (K), p·q·K + K numbers, with ``nn.Linear``'s initialisation. vec() here flattens row by row (the
    paper stacks columns); the two differ by a fixed permutation of W's columns, so they define the
    same family of functions.
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, device=None, dtype=None):
        (p, q) = matrix_shape(type(self).__name__, "in_shape", in_shape)
        num_classes = positive_count(type(self).__name__, "num_classes", num_classes)
        super().__init__(p * q, num_classes, bias=True, device=device, dtype=dtype)
        self.in_shape, self.num_classes = (p, q), num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., p, q) -> logits (..., K)."""
        return super().forward(x.flatten(-2))

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, num_classes={self.num_classes}"


class BilinearSoftmaxHead(nn.Module):
    """Case 2 (paper eq. 2.5): s_ik = u_k X_i v_kᵀ + b_k, K logits per matrix X_i (p×q).

    u_k and v_k are the k-th rows of the parameters ``u`` = Ū (K×p) and ``v`` = V̄ (K×q); ``bias`` is
    b (K): K·(p + q + 1) numbers, the matrix form kept up to the output.

    Cost: T_i = X_i V̄ᵀ (p×K) is one GEMM over the batch, N·p·q·K multiply-adds, then
    s_ik = Σ_r Ū_kr (T_i)_rk is an elementwise product and a sum over r, N·p·K more. Forming
    Ū X_i V̄ᵀ (K×K) and keeping its diagonal would waste a factor K.

    Initialisation, as ``MatNetLayer`` with gain 1: Ū ~ N(0, 1/p), V̄ ~ N(0, 1/q), b = 0. Then for a
    fixed X, E[s_k²] = ‖X‖²_F / (p·q), the mean square of X's entries: logits start at the scale of
    the input, and the rows of Ū and V̄ have unit norm in expectation.
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, device=None, dtype=None):
        super().__init__()
        self.in_shape = matrix_shape(type(self).__name__, "in_shape", in_shape)
        self.num_classes = positive_count(type(self).__name__, "num_classes", num_classes)
        (p, q), num_classes = self.in_shape, self.num_classes
        factory = {"device": device, "dtype": dtype}
        self.u = nn.Parameter(torch.empty(num_classes, p, **factory))
        self.v = nn.Parameter(torch.empty(num_classes, q, **factory))
        self.bias = nn.Parameter(torch.empty(num_classes, **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        p, q = self.in_shape
        nn.init.normal_(self.u, std=1.0 / math.sqrt(p))
        nn.init.normal_(self.v, std=1.0 / math.sqrt(q))
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., p, q) -> logits (..., K)."""
        x_times_v = x @ self.v.mT  # T_i = X_i V̄ᵀ, (..., p, K)
        return (x_times_v * self.u.mT).sum(dim=-2) + self.bias  # s_ik = Σ_r Ū_kr T_irk + b_k

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, num_classes={self.num_classes}"
