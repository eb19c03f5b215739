"""Reading and writing image files as float tensors in [0, 1], and finding the images of a folder.

Pillow decodes the files. An image becomes (1, H, W) when it is grey (modes 1, L, I;16, I, F, or LA
and RGB whose channels are equal is still RGB) and (3, H, W) otherwise; an alpha channel is dropped
and palette images are expanded to RGB.
"""
import os
from typing import List

import numpy
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm")

_GREY_MODES = {"1": 1.0, "L": 255.0, "LA": 255.0, "I;16": 65535.0, "I": 65535.0, "F": 1.0}


class ImageDataError(ValueError):
    """A missing, unreadable or unsuitable image file or folder; the message names the path."""


def load_image(path: str) -> torch.Tensor:
    """The image file at ``path`` as float32 (1, H, W) grey or (3, H, W) RGB with values in [0, 1]."""
    if not os.path.isfile(path):
        raise ImageDataError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in _GREY_MODES:
                grey = image.getchannel(0) if mode == "LA" else image
                pixels = numpy.asarray(grey, dtype=numpy.float32) / _GREY_MODES[mode]
                return torch.from_numpy(pixels.copy()).clamp_(0.0, 1.0).unsqueeze(0)
            pixels = numpy.asarray(image.convert("RGB"), dtype=numpy.float32) / 255.0
    except (UnidentifiedImageError, OSError) as error:
        raise ImageDataError(f"{path}: not a readable image ({error})") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


def save_image(path: str, image: torch.Tensor) -> None:
    """Writes (1, H, W) or (3, H, W) values in [0, 1] (clamped, rounded to 8 bits) to ``path``; the
    format follows the file name's extension."""
    if image.dim() != 3 or image.size(0) not in (1, 3):
        raise ValueError(f"save_image: expected an image (1, H, W) or (3, H, W), got shape {tuple(image.shape)}")
    pixels = (image.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu()
    array = pixels[0].numpy() if image.size(0) == 1 else pixels.permute(1, 2, 0).numpy()
    try:
        Image.fromarray(array).save(path)
    except (ValueError, OSError) as error:
        raise ImageDataError(f"{path}: cannot write the image ({error})") from None


def image_files(folder: str) -> List[str]:
    """The paths of the files in ``folder`` (not its subfolders) with an image extension, sorted."""
    if not os.path.isdir(folder):
        raise ImageDataError(f"{folder}: no such folder of images")
    names = sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise ImageDataError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return [os.path.join(folder, name) for name in names]
