"""First and second derivatives of an image along x (columns) and y (rows), by central differences:

    ∂I/∂x [r, c]   = (I[r, c+1] − I[r, c−1]) / 2         filter [−1/2, 0, 1/2] along a row
    ∂²I/∂x² [r, c] = I[r, c+1] − 2 I[r, c] + I[r, c−1]     filter [1, −2, 1] along a row

and the same along a column for y. Outside the image the border pixel is repeated (replicate
padding), so a derivative across the border is one-sided and a constant image has derivative 0
everywhere. These are the four feature images X²…X⁵ of the paper's super-resolution.
"""
import torch
from torch.nn import functional as F

DERIVATIVE_NAMES = ("dI/dx", "dI/dy", "d2I/dx2", "d2I/dy2")

_FIRST = (-0.5, 0.0, 0.5)
_SECOND = (1.0, -2.0, 1.0)


def _filters() -> torch.Tensor:
    """The four 3×3 kernels in the order of DERIVATIVE_NAMES, as conv2d weights (4, 1, 3, 3)."""
    kernels = torch.zeros(4, 1, 3, 3, dtype=torch.float64)
    kernels[0, 0, 1, :] = torch.tensor(_FIRST)
    kernels[1, 0, :, 1] = torch.tensor(_FIRST)
    kernels[2, 0, 1, :] = torch.tensor(_SECOND)
    kernels[3, 0, :, 1] = torch.tensor(_SECOND)
    return kernels


def derivative_images(image: torch.Tensor) -> torch.Tensor:
    """(..., H, W) → (..., 4, H, W): ∂/∂x, ∂/∂y, ∂²/∂x², ∂²/∂y² of each image (DERIVATIVE_NAMES)."""
    if image.dim() < 2 or image.size(-1) == 0 or image.size(-2) == 0:
        raise ValueError(f"derivative_images: expected a non-empty image (..., H, W), got shape {tuple(image.shape)}")
    leading, (height, width) = image.shape[:-2], image.shape[-2:]
    batch = F.pad(image.reshape(-1, 1, height, width), (1, 1, 1, 1), mode="replicate")
    derivatives = F.conv2d(batch, _filters().to(image))
    return derivatives.reshape(*leading, 4, height, width)
