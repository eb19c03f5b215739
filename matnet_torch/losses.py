"""Losses of MatNet models that torch.nn.functional does not already provide.

Classification (paper eq. 2.9) is ``torch.nn.functional.cross_entropy`` on the heads' logits.
"""
from typing import Optional

import torch


def matrix_regression_loss(prediction: torch.Tensor, target: torch.Tensor, batch_size: Optional[int] = None) -> torch.Tensor:
    """Case 1 regression loss (paper eq. 2.8): L = (1/N) Σ_i ½ ‖Y_i − T_i‖²_F.

    ``prediction`` and ``target`` have the same shape (..., m, n); every leading index is one of the
    N samples, so the loss is a sum over each matrix's entries and a mean over the samples (unlike
    ``F.mse_loss``, which also divides by m·n and omits the ½).

    ``batch_size`` B replaces N in the division: (1/B) Σ_i ½ ‖Y_i − T_i‖²_F is then this share's part
    of the mean over a global batch of B samples (data-parallel training, ``apps.common.distributed``),
    and the parts of the processes sum to the mean, whatever their sizes.
    """
    if prediction.dim() < 2 or prediction.shape != target.shape:
        raise ValueError(
            "matrix_regression_loss: expected prediction and target of the same shape (..., m, n), "
            f"got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    squared_frobenius = (prediction - target).square().sum(dim=(-2, -1))  # ‖Y_i − T_i‖²_F per sample
    if batch_size is None:
        return 0.5 * squared_frobenius.mean()
    if batch_size < 1:
        raise ValueError(f"matrix_regression_loss: batch_size must be a positive integer, got {batch_size}")
    return 0.5 * squared_frobenius.sum() / batch_size
