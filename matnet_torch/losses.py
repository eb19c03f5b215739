"""Losses of MatNet models that torch.nn.functional does not already provide.

Classification (paper eq. 2.9) is ``torch.nn.functional.cross_entropy`` on the heads' logits.
"""
import torch


def matrix_regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Case 1 regression loss (paper eq. 2.8): L = (1/N) Σ_i ½ ‖Y_i − T_i‖²_F.

    ``prediction`` and ``target`` have the same shape (..., m, n); every leading index is one of the
    N samples, so the loss is a sum over each matrix's entries and a mean over the samples (unlike
    ``F.mse_loss``, which also divides by m·n and omits the ½).
    """
    if prediction.dim() < 2 or prediction.shape != target.shape:
        raise ValueError(
            "matrix_regression_loss: expected prediction and target of the same shape (..., m, n), "
            f"got {tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    squared_frobenius = (prediction - target).square().sum(dim=(-2, -1))  # ‖Y_i − T_i‖²_F per sample
    return 0.5 * squared_frobenius.mean()
