"""Bicubic resizing, the one used for every low-resolution image, every bicubic upscaling (the
baseline and the network's input modalities alike) and the chroma of ``upscale``:

``torch.nn.functional.interpolate(mode="bicubic", align_corners=False, antialias=True)``: Keys' cubic
convolution with a = −0.75 and pixel centres aligned; with antialias=True a downscaling by 1/s
stretches the kernel by s (a low-pass filter against aliasing, as MATLAB's imresize does), and an
upscaling is plain bicubic interpolation. Results are clamped to [0, 1], the range of the images.
"""
from typing import Tuple

import torch
from torch.nn import functional as F


def bicubic_resize(image: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """``image`` (..., H, W) resized to (..., size[0], size[1]), clamped to [0, 1]."""
    if image.dim() < 2:
        raise ValueError(f"bicubic_resize: expected an image (..., H, W), got shape {tuple(image.shape)}")
    leading, (height, width) = image.shape[:-2], image.shape[-2:]
    batch = image.reshape(-1, 1, height, width)
    resized = F.interpolate(batch, size=tuple(size), mode="bicubic", align_corners=False, antialias=True)
    return resized.clamp(0.0, 1.0).reshape(*leading, *size)


def downscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(..., H, W) → (..., H // scale, W // scale) by bicubic with antialiasing.

    Pass an image whose sides are multiples of ``scale`` (see ``crop_to_multiple``) so that
    ``upscale(downscale(image, s), s)`` has the shape of ``image``.
    """
    height, width = image.shape[-2:]
    if height < scale or width < scale:
        raise ValueError(f"downscale: image of {height}×{width} pixels is smaller than the scale {scale}")
    return bicubic_resize(image, (height // scale, width // scale))


def upscale(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(..., h, w) → (..., scale·h, scale·w) by bicubic interpolation."""
    height, width = image.shape[-2:]
    return bicubic_resize(image, (scale * height, scale * width))


def crop_to_multiple(image: torch.Tensor, scale: int) -> torch.Tensor:
    """The top-left (..., s·⌊H/s⌋, s·⌊W/s⌋) of ``image``: sides divisible by the scale s."""
    height, width = image.shape[-2:]
    return image[..., : height - height % scale, : width - width % scale]
