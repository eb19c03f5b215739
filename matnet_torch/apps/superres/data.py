"""The images of the super-resolution app: which files, their luminance, the training patches."""
import os
from typing import Any, Dict, List, Optional, Tuple

import torch

from ...data.images import ImageDataError, image_files, load_image
from ...data.skimage_photos import skimage_photographs
from ...imaging.protocol import Protocol, eight_bit, to_ycbcr
from ...imaging.superresolution import training_pairs, training_patches
from .config import encoding, training_protocol


def image_paths(folder: Optional[str], split: str) -> List[str]:
    """The image files of ``folder``, or the scikit-image photographs of ``split`` when it is None."""
    return skimage_photographs(split) if folder is None else image_files(folder)


def luminance(image: torch.Tensor, protocol: Protocol) -> torch.Tensor:
    """(H, W): the luminance of a grey or RGB image under ``protocol``, rounded to 8 bits if it says so."""
    values = to_ycbcr(image, protocol.studio_swing)[0]
    return eight_bit(values) if protocol.eight_bit else values


def check_size(path: str, image: torch.Tensor, minimum: int, purpose: str) -> None:
    """ImageDataError naming ``path`` when either side of ``image`` is below ``minimum`` pixels."""
    height, width = image.shape[-2:]
    if height < minimum or width < minimum:
        raise ImageDataError(f"{path}: image of {height}×{width} pixels is too small: {purpose} needs at least {minimum}×{minimum}")


def training_set(paths: List[str], config: Dict[str, Any]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(encoder inputs, decoder targets), each (patches, 5, size, size), from the high-resolution
    images at ``paths`` (``imaging.superresolution.training_pairs`` under the config's encoding).

    Every image gets an equal share of ``patches`` (the first ``patches mod images`` one more), at
    uniformly random positions within it: large images with wide flat areas (the retina's and the
    Hubble field's black) would otherwise supply most of the patches.
    """
    scale, size, protocol = config["scale"], config["patch_size"], training_protocol(config)
    images = []
    for path in paths:
        image = luminance(load_image(path), protocol)
        check_size(path, image, scale * -(-size // scale), f"training with --patch-size {size} at --scale {scale}")
        images.append(image)
    share, extra = divmod(config["patches"], len(images))
    counts = [share + (index < extra) for index in range(len(images))]
    generator = torch.Generator().manual_seed(config["seed"])
    patches = [training_patches(image, scale, size, count, generator, protocol.kernel)
               for image, count in zip(images, counts) if count]
    modalities, bicubic = (torch.cat(parts) for parts in zip(*patches))
    return training_pairs(modalities, bicubic, encoding(config))


def image_names(paths: List[str]) -> List[str]:
    """The file names of ``paths``, for tables and figure file names."""
    return [os.path.basename(path) for path in paths]
