"""The images of the super-resolution app: which files, their luminance, the training patches."""
import os
from typing import Any, Dict, List, Optional, Tuple

import torch

from ...data.images import ImageDataError, image_files, load_image
from ...data.skimage_photos import skimage_photographs
from ...imaging import rgb_to_ycbcr
from ...imaging.superresolution import training_patches


def image_paths(folder: Optional[str], split: str) -> List[str]:
    """The image files of ``folder``, or the scikit-image photographs of ``split`` when it is None."""
    return skimage_photographs(split) if folder is None else image_files(folder)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(H, W): a grey image's only channel, or Y of an RGB image's YCbCr."""
    return image[0] if image.size(0) == 1 else rgb_to_ycbcr(image)[0]


def check_size(path: str, image: torch.Tensor, minimum: int, purpose: str) -> None:
    """ImageDataError naming ``path`` when either side of ``image`` is below ``minimum`` pixels."""
    height, width = image.shape[-2:]
    if height < minimum or width < minimum:
        raise ImageDataError(f"{path}: image of {height}×{width} pixels is too small: {purpose} needs at least {minimum}×{minimum}")


def training_set(paths: List[str], config: Dict[str, Any]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each (patches, 5, size, size), from the high-resolution images at ``paths``.

    The positions are uniform over all images together: each image gets a share of ``patches``
    proportional to its number of pixels (at least one patch). The targets are the five modalities
    (truth, the bicubic image's derivatives); the inputs equal them, except that with
    ``image_modality == "bicubic"`` X¹ is the bicubic-upscaled patch instead of the truth.
    """
    scale, size = config["scale"], config["patch_size"]
    images = []
    for path in paths:
        image = luminance(load_image(path))
        check_size(path, image, scale * -(-size // scale), f"training with --patch-size {size} at --scale {scale}")
        images.append(image)
    pixels = torch.tensor([float(image.numel()) for image in images])
    counts = (pixels / pixels.sum() * config["patches"]).round().long().clamp(min=1)
    generator = torch.Generator().manual_seed(config["seed"])
    modalities, bicubic = zip(*(training_patches(image, scale, size, int(count), generator) for image, count in zip(images, counts)))
    targets = torch.cat(modalities)
    inputs = targets.clone()
    if config["image_modality"] == "bicubic":
        inputs[:, 0] = torch.cat(bicubic)
    return inputs, targets


def image_names(paths: List[str]) -> List[str]:
    """The file names of ``paths``, for tables and figure file names."""
    return [os.path.basename(path) for path in paths]
