"""A trained model from its directory, and ×s upscaling of whole images with it: luminance by the
network, chroma (Cb, Cr) by bicubic interpolation, back to RGB; grey images stay grey.

Images are processed in bands of rows (``imaging.superresolution.super_resolve_rows``), so that
``upscale_to_8bit`` needs memory for the input, the 8-bit output and one band, whatever the size.
"""
import os
from typing import Any, Dict, Iterator, NamedTuple, Optional, Tuple

import numpy
import torch
from torch import nn

from ...data.images import ImageDataError, to_uint8
from ...imaging import upscale, upscale_rows
from ...imaging.protocol import Protocol, to_rgb, to_ycbcr
from ...imaging.superresolution import super_resolve_rows
from ..common.checkpoint import CheckpointError, load_checkpoint
from ..common.cli import UsageError
from .cnn_control import SRCNN, srcnn_rows
from .config import CHECKPOINT_KIND, CHECKPOINT_NAME, build_model, encoding, training_protocol


def prepare_inference(args) -> Tuple[nn.Module, Dict[str, Any]]:
    """What eval and upscale do first: check --stride and --threads, set the threads (torch's default
    when not given), load --model (checked against --scale when given); returns (model, checkpoint)."""
    for name in ("stride", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be a positive integer, got {value}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model, checkpoint = load_model(args.model, args.scale)
    size = checkpoint["config"]["patch_size"]
    if args.stride > size:
        raise UsageError(f"--stride {args.stride} is larger than the model's {size}×{size} patches: pixels between them would get no estimate")
    return model, checkpoint


def load_model(directory: str, scale: Optional[int] = None) -> Tuple[nn.Module, Dict[str, Any]]:
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
        raise CheckpointError(f"{path}: does not hold the super-resolution network its configuration describes: {type(err).__name__}: {reason}") from err
    trained_scale = checkpoint["config"]["scale"]
    if scale is not None and scale != trained_scale:
        raise UsageError(f"--scale {scale}, but the model in {directory} was trained for --scale {trained_scale}")
    model.eval()
    return model, checkpoint


def network_name(config: Dict[str, Any]) -> str:
    """"MatNet" or "SRCNN", for tables and figures."""
    return "SRCNN" if config.get("architecture", "matnet") == "srcnn" else "MatNet"


def minimum_side(config: Dict[str, Any]) -> int:
    """The smallest side of a low-resolution image whose ×s upscaling holds one patch."""
    return -(-config["patch_size"] // config["scale"])


def check_upscalable(config: Dict[str, Any], low: torch.Tensor, name: str) -> None:
    """ImageDataError naming ``name`` when ``low`` is too small for one patch after upscaling."""
    scale, size = config["scale"], config["patch_size"]
    height, width = low.shape[-2:]
    smallest = minimum_side(config)
    if height < smallest or width < smallest:
        raise ImageDataError(
            f"{name}: image of {height}×{width} pixels is too small: ×{scale} upscaling with {size}×{size} patches "
            f"needs at least {smallest}×{smallest}"
        )


def luminance_rows(model: nn.Module, config: Dict[str, Any], low_luminance: torch.Tensor,
                   stride: int) -> Iterator[Tuple[int, torch.Tensor]]:
    """(first row, rows) bands of the model's ×s luminance estimate of ``low_luminance`` (h, w)
    (the SRCNN control has no patches and ignores ``stride``)."""
    kernel = training_protocol(config).kernel
    if isinstance(model, SRCNN):
        return srcnn_rows(model, low_luminance, config["scale"], encoding(config), kernel)
    return super_resolve_rows(model, low_luminance, config["scale"], config["patch_size"], encoding(config), stride, kernel)


class Upscaled(NamedTuple):
    """×s versions of one image: MatNet's and bicubic's, each as an RGB/grey image and as its luminance."""

    matnet: torch.Tensor  # (C, s·h, s·w)
    bicubic: torch.Tensor  # (C, s·h, s·w)
    matnet_luminance: torch.Tensor  # (s·h, s·w)
    bicubic_luminance: torch.Tensor  # (s·h, s·w)


def upscale_image(model: nn.Module, config: Dict[str, Any], low: torch.Tensor, stride: int,
                  protocol: Protocol, name: str) -> Upscaled:
    """``low`` (1 or 3, h, w), YCbCr or luminance of ``protocol``, upscaled ×config["scale"] as whole
    images (for evaluation); bicubic with the protocol's kernel."""
    check_upscalable(config, low, name)
    estimate = torch.cat([rows for _, rows in luminance_rows(model, config, low[0], stride)])
    bicubic = upscale(low, config["scale"], protocol.kernel)
    with_estimate = torch.cat([estimate.unsqueeze(0), bicubic[1:]])
    return Upscaled(to_rgb(with_estimate, protocol.studio_swing), to_rgb(bicubic, protocol.studio_swing), estimate, bicubic[0])


def model_ycbcr(config: Dict[str, Any], image: torch.Tensor) -> torch.Tensor:
    """``image`` (1 or 3, h, w) in the colour space the model was trained in (``training_protocol``)."""
    return to_ycbcr(image, training_protocol(config).studio_swing)


def upscale_to_8bit(model: nn.Module, config: Dict[str, Any], ycbcr: torch.Tensor, stride: int, name: str,
                    progress=None) -> numpy.ndarray:
    """``ycbcr`` (1 or 3, h, w), an image in the model's colour space (``model_ycbcr``), upscaled ×s
    band by band into an 8-bit RGB (s·h, s·w, 3) or grey (s·h, s·w) array; ``progress(rows)`` is
    called after each band."""
    check_upscalable(config, ycbcr, name)
    scale, protocol = config["scale"], training_protocol(config)
    channels, (height, width) = ycbcr.size(0), ycbcr.shape[-2:]
    pixels = numpy.empty((scale * height, scale * width) + ((3,) if channels == 3 else ()), dtype=numpy.uint8)
    for first, rows in luminance_rows(model, config, ycbcr[0], stride):
        stop = first + len(rows)
        band = rows.unsqueeze(0)
        if channels == 3:
            band = torch.cat([band, upscale_rows(ycbcr[1:], scale, first, stop, protocol.kernel)])
        pixels[first:stop] = to_uint8(to_rgb(band, protocol.studio_swing))
        if progress is not None:
            progress(len(rows))
    return pixels
