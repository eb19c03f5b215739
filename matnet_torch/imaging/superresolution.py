"""Super-resolution by ×s with a multimodal autoencoder (paper 4.2; design.md §5), on luminance images.

Five modalities, each a patch at the same position of the high-resolution grid:
    X¹  the image patch
    X²  ∂/∂x,  X³  ∂/∂y,  X⁴  ∂²/∂x²,  X⁵  ∂²/∂y²   of the bicubic-upscaled image

Values given to sigmoid decoders (the targets) lie in [0, 1]. The derivatives are mapped affinely
from their full ranges onto it: a central first difference of values in [0, 1] lies in [−½, ½] and
becomes ½ + d; a second difference lies in [−2, 2] and becomes ½ + d/4; a flat region is ½ in all
four. The encoder gets every modality minus ½ (centred inputs: without the offset, Σ_j U_j X^j V_jᵀ is
dominated by the constant ½ and training stalls).

How X¹ is used is an ``Encoding``:
    image_input  what the encoder's X¹ holds during training: "truth", the high-resolution patch (the
                 paper: a plain autoencoder), or "bicubic", the bicubic-upscaled patch (what X¹ holds
                 at inference, always); the derivatives are always those of the bicubic image
    target       what the decoder's X̂¹ reconstructs: "image", the high-resolution patch (the paper),
                 or "detail", the high frequencies bicubic misses, ½ + gain · (truth − bicubic); the
                 estimate is then bicubic + (X̂¹ − ½) / gain. Through a 10×10 hidden matrix the detail
                 fits where the whole image does not.
"""
from typing import List, NamedTuple, Tuple

import torch
from torch import nn

from .derivatives import derivative_images
from .patches import extract_patches, merge_patches, random_patches
from .resize import crop_to_multiple, downscale, upscale

MODALITY_NAMES = ("image", "dI/dx", "dI/dy", "d2I/dx2", "d2I/dy2")
MODALITIES = len(MODALITY_NAMES)
IMAGE_INPUTS = ("truth", "bicubic")
TARGETS = ("image", "detail")

# Affine maps of the derivative images onto [0, 1]: value ↦ ½ + scale · value.
_DERIVATIVE_SCALES = torch.tensor([1.0, 1.0, 0.25, 0.25])


class Encoding(NamedTuple):
    """How X¹ enters training and leaves the decoder (module docstring)."""

    image_input: str = "truth"
    target: str = "image"
    detail_gain: float = 1.0


def feature_images(upscaled: torch.Tensor) -> torch.Tensor:
    """(H, W) bicubic-upscaled luminance → (4, H, W): its derivatives X²…X⁵ mapped onto [0, 1]."""
    derivatives = derivative_images(upscaled)
    return 0.5 + _DERIVATIVE_SCALES.to(derivatives).view(4, 1, 1) * derivatives


def low_resolution_pair(truth: torch.Tensor, scale: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(truth cropped to sides divisible by s, its bicubic downscaling by 1/s, that upscaled back by s)."""
    truth = crop_to_multiple(truth, scale)
    low = downscale(truth, scale)
    return truth, low, upscale(low, scale)


def training_patches(
    truth: torch.Tensor, scale: int, size: int, count: int, generator: torch.Generator
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``count`` random patch positions of one high-resolution luminance image (H, W).

    Returns (modalities (count, 5, size, size): truth, X²…X⁵; bicubic (count, size, size): the
    bicubic-upscaled patch at the same positions, the X¹ of inference).
    """
    truth, _, upscaled = low_resolution_pair(truth, scale)
    stack = torch.cat([truth.unsqueeze(0), feature_images(upscaled), upscaled.unsqueeze(0)])
    patches = random_patches(stack, size, count, generator)
    return patches[:, :MODALITIES], patches[:, MODALITIES]


def training_pairs(modalities: torch.Tensor, bicubic: torch.Tensor, encoding: Encoding) -> Tuple[torch.Tensor, torch.Tensor]:
    """(encoder inputs, decoder targets), each (N, 5, size, size), from ``training_patches``' output."""
    targets = modalities.clone()
    if encoding.target == "detail":
        targets[:, 0] = 0.5 + encoding.detail_gain * (modalities[:, 0] - bicubic)
    inputs = modalities.clone()
    if encoding.image_input == "bicubic":
        inputs[:, 0] = bicubic
    return inputs - 0.5, targets


def modality_list(patches: torch.Tensor) -> List[torch.Tensor]:
    """(N, 5, p, q) → [X¹, …, X⁵], each (N, p, q), the autoencoder's input list."""
    return list(patches.unbind(1))


@torch.no_grad()
def super_resolve(
    model: nn.Module,
    low: torch.Tensor,
    scale: int,
    size: int,
    encoding: Encoding = Encoding(),
    stride: int = 1,
    batch_size: int = 4096,
) -> torch.Tensor:
    """The ×s luminance estimate (s·h, s·w) of a low-resolution luminance image ``low`` (h, w).

    Every sliding-window patch (``stride`` apart) of the bicubic-upscaled image and of its feature
    images, centred, goes through ``model`` (a ``MultimodalMatNetAutoencoder``) in batches; the
    reconstructions X̂¹ are merged by averaging where they overlap, decoded (``Encoding``) and
    clamped to [0, 1].
    """
    upscaled = upscale(low, scale)
    stack = torch.cat([upscaled.unsqueeze(0), feature_images(upscaled)]) - 0.5
    patches = extract_patches(stack, size, stride)  # (L, 5, size, size)
    outputs = torch.cat([model(modality_list(batch))[0][0] for batch in patches.split(batch_size)])
    merged = merge_patches(outputs, upscaled.shape, stride)
    if encoding.target == "detail":
        merged = upscaled + (merged - 0.5) / encoding.detail_gain
    return merged.clamp(0.0, 1.0)
