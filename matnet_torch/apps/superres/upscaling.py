"""A trained model from its directory, and ×s upscaling of whole images with it: luminance by the
network, chroma (Cb, Cr) by bicubic interpolation, back to RGB; grey images stay grey."""
import os
from typing import Any, Dict, NamedTuple, Optional, Tuple

import torch

from ...data.images import ImageDataError
from ...imaging import rgb_to_ycbcr, upscale, ycbcr_to_rgb
from ...imaging.superresolution import super_resolve
from ...nn import MultimodalMatNetAutoencoder
from ..common.checkpoint import CheckpointError, load_checkpoint
from ..common.cli import UsageError
from .config import CHECKPOINT_KIND, CHECKPOINT_NAME, build_model, encoding


def prepare_inference(args) -> Tuple[MultimodalMatNetAutoencoder, Dict[str, Any]]:
    """What eval and upscale do first: check --stride and --threads, set the threads, load --model
    (checked against --scale when given); returns (model, checkpoint payload)."""
    for name in ("stride", "threads"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    return load_model(args.model, args.scale)


def load_model(directory: str, scale: Optional[int] = None) -> Tuple[MultimodalMatNetAutoencoder, Dict[str, Any]]:
    """(autoencoder, checkpoint payload) of the model directory written by ``train``.

    CheckpointError (one line) for a missing, damaged or foreign checkpoint, or one that does not
    hold the autoencoder its configuration describes; UsageError when ``scale`` is given and is not
    the scale the model was trained for.
    """
    path = os.path.join(directory, CHECKPOINT_NAME)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory}: no such model directory")
    checkpoint = load_checkpoint(path, CHECKPOINT_KIND)
    try:
        model = build_model(checkpoint["config"])
        model.load_state_dict(checkpoint["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: does not hold a super-resolution autoencoder: {type(err).__name__}: {reason}") from err
    trained_scale = checkpoint["config"]["scale"]
    if scale is not None and scale != trained_scale:
        raise UsageError(f"--scale {scale}, but the model in {directory} was trained for --scale {trained_scale}")
    model.eval()
    return model, checkpoint


class Upscaled(NamedTuple):
    """×s versions of one image: MatNet's and bicubic's, each as an image and as its luminance."""

    matnet: torch.Tensor  # (C, s·h, s·w)
    bicubic: torch.Tensor  # (C, s·h, s·w)
    matnet_luminance: torch.Tensor  # (s·h, s·w)
    bicubic_luminance: torch.Tensor  # (s·h, s·w)


def minimum_side(config: Dict[str, Any]) -> int:
    """The smallest side of a low-resolution image whose ×s upscaling holds one patch."""
    return -(-config["patch_size"] // config["scale"])


def upscale_image(model: MultimodalMatNetAutoencoder, config: Dict[str, Any], low: torch.Tensor, stride: int, name: str) -> Upscaled:
    """``low`` (1 or 3, h, w) upscaled ×config["scale"]; ImageDataError naming ``name`` when it is too
    small for one patch."""
    scale, size = config["scale"], config["patch_size"]
    height, width = low.shape[-2:]
    smallest = minimum_side(config)
    if height < smallest or width < smallest:
        raise ImageDataError(
            f"{name}: image of {height}×{width} pixels is too small: ×{scale} upscaling with {size}×{size} patches "
            f"needs at least {smallest}×{smallest}"
        )
    ycbcr = low if low.size(0) == 1 else rgb_to_ycbcr(low)
    bicubic = upscale(ycbcr, scale)
    estimate = super_resolve(model, ycbcr[0], scale, size, encoding(config), stride)
    if low.size(0) == 1:
        return Upscaled(estimate.unsqueeze(0), bicubic, estimate, bicubic[0])
    to_rgb = lambda image: ycbcr_to_rgb(image).clamp(0.0, 1.0)  # noqa: E731
    return Upscaled(to_rgb(torch.cat([estimate.unsqueeze(0), bicubic[1:]])), to_rgb(bicubic), estimate, bicubic[0])
