"""Bicubic resizing, the one used for every low-resolution image, every bicubic upscaling (the
baseline and the network's input modalities alike) and the chroma of ``upscale``. Two kernels:

"pytorch"  ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False, antialias=True)``:
           Keys' cubic convolution with a = −0.75 and pixel centres aligned; with antialias=True a
           downscaling by 1/s stretches the kernel by s, and an upscaling is plain bicubic
           interpolation.
"matlab"   MATLAB's ``imresize(I, scale, 'bicubic')`` (``matlab_bicubic``): Keys' kernel with
           a = −0.5, stretched by 1/scale when downscaling (antialiasing), symmetric boundary; the
           resizing of the super-resolution literature.

Results are clamped to [0, 1], the range of the images. ``upscale_rows`` computes a band of rows of
``upscale`` alone, equal to the same rows of the whole image (bit for bit with "matlab", and with
"pytorch" at scales 2 and 4; at other scales "pytorch" rounds the source coordinate differently, a
difference of float rounding), so that large images can be upscaled band by band.
"""
from typing import Optional, Tuple

import torch
from torch.nn import functional as F

from .matlab_bicubic import matlab_resize, matlab_resize_rows

KERNELS = ("matlab", "pytorch")

# Low-resolution rows beyond a band that the "pytorch" kernel may read when upscaling: its taps reach
# two source pixels either side of the source coordinate; one more for the rounding of that coordinate.
_PYTORCH_MARGIN = 3


def _check(function: str, image: torch.Tensor, kernel: str) -> None:
    if image.dim() < 2:
        raise ValueError(f"{function}: expected an image (..., H, W), got shape {tuple(image.shape)}")
    if kernel not in KERNELS:
        raise ValueError(f"{function}: unknown kernel '{kernel}'; expected one of {', '.join(KERNELS)}")


def _pytorch_resize(image: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    leading, (height, width) = image.shape[:-2], image.shape[-2:]
    batch = image.reshape(-1, 1, height, width)
    resized = F.interpolate(batch, size=tuple(size), mode="bicubic", align_corners=False, antialias=True)
    return resized.reshape(*leading, *size)


def bicubic_resize(image: torch.Tensor, size: Tuple[int, int], kernel: str = "pytorch", scale: Optional[float] = None) -> torch.Tensor:
    """``image`` (..., H, W) resized to (..., size[0], size[1]), clamped to [0, 1].

    ``scale`` is the factor MATLAB's kernel is told (size / input size when None); "pytorch" ignores it.
    """
    _check("bicubic_resize", image, kernel)
    if kernel == "pytorch":
        resized = _pytorch_resize(image, size)
    else:
        resized = matlab_resize(image, size, scale)
    return resized.clamp(0.0, 1.0)


def downscale(image: torch.Tensor, scale: int, kernel: str = "pytorch") -> torch.Tensor:
    """(..., H, W) → (..., H // scale, W // scale) by bicubic with antialiasing.

    Pass an image whose sides are multiples of ``scale`` (see ``crop_to_multiple``) so that
    ``upscale(downscale(image, s), s)`` has the shape of ``image``.
    """
    height, width = image.shape[-2:]
    if height < scale or width < scale:
        raise ValueError(f"downscale: image of {height}×{width} pixels is smaller than the scale {scale}")
    return bicubic_resize(image, (height // scale, width // scale), kernel, 1.0 / scale)


def upscale(image: torch.Tensor, scale: int, kernel: str = "pytorch") -> torch.Tensor:
    """(..., h, w) → (..., scale·h, scale·w) by bicubic interpolation."""
    height, width = image.shape[-2:]
    return bicubic_resize(image, (scale * height, scale * width), kernel, float(scale))


def upscale_rows(image: torch.Tensor, scale: int, start: int, stop: int, kernel: str = "pytorch") -> torch.Tensor:
    """Rows ``start`` to ``stop`` − 1 of ``upscale(image, scale, kernel)``, (..., stop − start, scale·w),
    computed from the low-resolution rows they depend on only."""
    _check("upscale_rows", image, kernel)
    height, width = image.shape[-2:]
    if not 0 <= start < stop <= scale * height:
        raise ValueError(f"upscale_rows: rows {start}..{stop - 1} are not rows of a {scale * height}-row upscaling")
    if kernel == "matlab":
        return matlab_resize_rows(image, (scale * height, scale * width), float(scale), start, stop).clamp(0.0, 1.0)
    # Upscaling by an integer s, output row r reads the source rows around (r + ½)/s − ½; a band of
    # source rows with a margin reproduces those rows, the band's own edges being out of their reach.
    first = max(0, start // scale - _PYTORCH_MARGIN)
    last = min(height, -(-stop // scale) + _PYTORCH_MARGIN)
    band = _pytorch_resize(image[..., first:last, :], (scale * (last - first), scale * width))
    return band[..., start - scale * first : stop - scale * first, :].clamp(0.0, 1.0)


def crop_to_multiple(image: torch.Tensor, scale: int) -> torch.Tensor:
    """The top-left (..., s·⌊H/s⌋, s·⌊W/s⌋) of ``image``: sides divisible by the scale s."""
    height, width = image.shape[-2:]
    return image[..., : height - height % scale, : width - width % scale]
