"""RGB ↔ YCbCr, ITU-R BT.601 full range (the JPEG convention), all channels in [0, 1]:

    Y  =       0.299 R    + 0.587 G    + 0.114 B
    Cb = 0.5 − 0.168736 R − 0.331264 G + 0.5 B
    Cr = 0.5 + 0.5 R      − 0.418688 G − 0.081312 B

A grey image (R = G = B = g) has Y = g and Cb = Cr = 0.5.
"""
import torch

_RGB_TO_YCBCR = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ],
    dtype=torch.float64,
)
_CHROMA_OFFSET = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)


def _check_channels(function: str, image: torch.Tensor) -> None:
    if image.dim() < 3 or image.size(-3) != 3:
        raise ValueError(f"{function}: expected an image of shape (..., 3, H, W), got {tuple(image.shape)}")


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB → (..., 3, H, W) YCbCr."""
    _check_channels("rgb_to_ycbcr", image)
    matrix = _RGB_TO_YCBCR.to(image)
    return torch.einsum("ck,...khw->...chw", matrix, image) + _CHROMA_OFFSET.to(image).view(3, 1, 1)


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) YCbCr → (..., 3, H, W) RGB (the exact inverse of ``rgb_to_ycbcr``), not clamped."""
    _check_channels("ycbcr_to_rgb", image)
    inverse = torch.linalg.inv(_RGB_TO_YCBCR).to(image)
    return torch.einsum("ck,...khw->...chw", inverse, image - _CHROMA_OFFSET.to(image).view(3, 1, 1))
