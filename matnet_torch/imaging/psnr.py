"""Peak signal-to-noise ratio of images in [0, 1]."""
import math

import torch


def psnr(estimate: torch.Tensor, truth: torch.Tensor, border: int = 0) -> float:
    """10 log10(1 / MSE) in dB, the MSE over the pixels at least ``border`` pixels inside the image.

    ``estimate`` and ``truth`` are (..., H, W) of one shape with values in [0, 1] (peak 1); the crop
    removes ``border`` rows and columns on every side (super-resolution scores conventionally crop
    the scale factor's width, where interpolation lacks neighbours). Identical images give +inf.
    """
    if estimate.shape != truth.shape or estimate.dim() < 2:
        raise ValueError(
            f"psnr: expected estimate and truth of one shape (..., H, W), got {tuple(estimate.shape)} and {tuple(truth.shape)}"
        )
    height, width = truth.shape[-2:]
    if border < 0 or 2 * border >= min(height, width):
        raise ValueError(f"psnr: border {border} leaves no pixels of a {height}×{width} image")
    region = (..., slice(border, height - border), slice(border, width - border))
    error = (estimate[region].double() - truth[region].double()).square().mean().item()
    return math.inf if error == 0 else 10.0 * math.log10(1.0 / error)
