"""Super-resolution by ×s with a multimodal autoencoder (paper 4.2; design.md §5), on luminance images.

Five modalities, each a patch at the same position:
    X¹  the image: the true high-resolution one when training, the bicubic-upscaled one at inference
    X²  ∂/∂x,  X³  ∂/∂y,  X⁴  ∂²/∂x²,  X⁵  ∂²/∂y²   of the bicubic-upscaled image

The derivatives are mapped affinely from their full ranges onto [0, 1], the range of a sigmoid
decoder: a central first difference of values in [0, 1] lies in [−½, ½] and becomes ½ + d; a second
difference lies in [−2, 2] and becomes ½ + d/4. A flat region is ½ in all four.
"""
from typing import List, Tuple

import torch
from torch import nn

from .derivatives import derivative_images
from .patches import extract_patches, merge_patches, random_patches
from .resize import crop_to_multiple, downscale, upscale

MODALITY_NAMES = ("image", "dI/dx", "dI/dy", "d2I/dx2", "d2I/dy2")
MODALITIES = len(MODALITY_NAMES)

# Affine maps of the derivative images onto [0, 1]: value ↦ ½ + scale · value.
_DERIVATIVE_SCALES = torch.tensor([1.0, 1.0, 0.25, 0.25])


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


def modality_list(patches: torch.Tensor) -> List[torch.Tensor]:
    """(N, 5, p, q) → [X¹, …, X⁵], each (N, p, q), the autoencoder's input list."""
    return list(patches.unbind(1))


@torch.no_grad()
def super_resolve(
    model: nn.Module, low: torch.Tensor, scale: int, size: int, stride: int = 1, batch_size: int = 4096
) -> torch.Tensor:
    """The ×s luminance estimate (s·h, s·w) of a low-resolution luminance image ``low`` (h, w).

    Every sliding-window patch (``stride`` apart) of the bicubic-upscaled image and of its feature
    images goes through ``model`` (a ``MultimodalMatNetAutoencoder``) in batches; the reconstructions
    X̂¹ are merged by averaging where they overlap and clamped to [0, 1].
    """
    upscaled = upscale(low, scale)
    stack = torch.cat([upscaled.unsqueeze(0), feature_images(upscaled)])
    patches = extract_patches(stack, size, stride)  # (L, 5, size, size)
    estimates = torch.cat([model(modality_list(batch))[0][0] for batch in patches.split(batch_size)])
    return merge_patches(estimates, upscaled.shape, stride).clamp(0.0, 1.0)
