"""Evaluation protocols of super-resolution: how the low-resolution image is made, what the baseline
is and on which luminance values the PSNR is taken. Two protocols:

"literature"  the protocol of the super-resolution literature (SRCNN, FSRCNN, sparse coding, …):
              MATLAB's imresize bicubic (a = −0.5, antialiased when downscaling) for the degradation
              and the baseline; luminance Y of MATLAB's rgb2ycbcr (ITU-R BT.601 studio swing, Y in
              [16, 235] of 255), rounded to 8 bits like the uint8 images MATLAB scores; a grey image
              is treated as R = G = B. MATLAB's rgb2ycbcr, on values in [0, 1]:

                  Y  = ( 16 +  65.481 R + 128.553 G +  24.966 B) / 255
                  Cb = (128 −  37.797 R −  74.203 G + 112.0   B) / 255
                  Cr = (128 + 112.0   R −  93.786 G −  18.214 B) / 255
"pytorch"     torch's antialiased bicubic (a = −0.75); full-range BT.601 (JPEG) luminance in [0, 1],
              unrounded.

Both score PSNR with peak 1 (255 on 8-bit values) on the luminance without ``scale`` pixels per side.
Studio-swing luminance is an affine map of full-range luminance, Y_studio = (16 + 219 Y_full) / 255
(65.481 = 219 · 0.299 and so on), so a PSNR difference between two methods is the same on either
luminance when nothing is rounded; absolute PSNRs on studio swing are 20 log10(255/219) ≈ 1.32 dB
higher.
"""
from typing import NamedTuple

import torch

from .colour import rgb_to_ycbcr, ycbcr_to_rgb


class Protocol(NamedTuple):
    name: str
    kernel: str  # resize.KERNELS
    studio_swing: bool  # Y in [16, 235] / 255 rather than [0, 1]
    eight_bit: bool  # luminance of the truth and of every estimate rounded to multiples of 1/255


PROTOCOLS = {
    "literature": Protocol("literature", "matlab", True, True),
    "pytorch": Protocol("pytorch", "pytorch", False, False),
}

_STUDIO_MATRIX = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=torch.float64
) / 255.0
_STUDIO_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64) / 255.0
_STUDIO_LUMINANCE_GAIN = 219.0 / 255.0  # the sum of the first row: the gain of a grey image


def protocol(name: str) -> Protocol:
    """The protocol called ``name``."""
    if name not in PROTOCOLS:
        raise ValueError(f"protocol: unknown protocol '{name}'; expected one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def to_ycbcr(image: torch.Tensor, studio_swing: bool) -> torch.Tensor:
    """(1 or 3, H, W) grey or RGB → (1 or 3, H, W): luminance of a grey image (R = G = B), YCbCr of
    an RGB one, full range or studio swing."""
    if not studio_swing:
        return image if image.size(-3) == 1 else rgb_to_ycbcr(image)
    offset = _STUDIO_OFFSET.to(image).view(3, 1, 1)
    if image.size(-3) == 1:
        return offset[:1] + _STUDIO_LUMINANCE_GAIN * image
    return torch.einsum("ck,...khw->...chw", _STUDIO_MATRIX.to(image), image) + offset


def to_rgb(ycbcr: torch.Tensor, studio_swing: bool) -> torch.Tensor:
    """The inverse of ``to_ycbcr``, clamped to [0, 1]."""
    if not studio_swing:
        rgb = ycbcr if ycbcr.size(-3) == 1 else ycbcr_to_rgb(ycbcr)
    elif ycbcr.size(-3) == 1:
        rgb = (ycbcr - _STUDIO_OFFSET[0].item()) / _STUDIO_LUMINANCE_GAIN
    else:
        centred = ycbcr - _STUDIO_OFFSET.to(ycbcr).view(3, 1, 1)
        rgb = torch.einsum("ck,...khw->...chw", torch.linalg.inv(_STUDIO_MATRIX).to(ycbcr), centred)
    return rgb.clamp(0.0, 1.0)


def eight_bit(image: torch.Tensor) -> torch.Tensor:
    """``image`` in [0, 1] rounded to the nearest multiple of 1/255 (and clamped), as MATLAB's uint8
    conversion does (halves away from zero)."""
    return torch.floor(image.clamp(0.0, 1.0) * 255.0 + 0.5) / 255.0
