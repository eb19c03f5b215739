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


def derivative_images(image: torch.Tensor) -> torch.Tensor:
    """(..., H, W) → (..., 4, H, W): ∂/∂x, ∂/∂y, ∂²/∂x², ∂²/∂y² of each image (DERIVATIVE_NAMES).

    Elementwise differences of shifted copies, so that each value depends on its 3×3 neighbourhood
    only and a band of rows computed alone (with its neighbour rows) equals those rows of the whole.
    """
    if image.dim() < 2 or image.size(-1) == 0 or image.size(-2) == 0:
        raise ValueError(f"derivative_images: expected a non-empty image (..., H, W), got shape {tuple(image.shape)}")
    leading, (height, width) = image.shape[:-2], image.shape[-2:]
    padded = F.pad(image.reshape(-1, 1, height, width), (1, 1, 1, 1), mode="replicate")[:, 0]
    centre = padded[:, 1:-1, 1:-1]
    left, right = padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]
    above, below = padded[:, :-2, 1:-1], padded[:, 2:, 1:-1]
    derivatives = torch.stack(
        [(right - left) * 0.5, (below - above) * 0.5, right - 2.0 * centre + left, below - 2.0 * centre + above], dim=1
    )
    return derivatives.reshape(*leading, 4, height, width)
