"""Reading and writing image files as float tensors in [0, 1], and finding the images of a folder.

Pillow decodes the files. An image becomes (1, H, W) when it is grey (modes 1, L, LA, 16-bit I;16*,
I, F; an RGB image whose channels are equal is still RGB) and (3, H, W) otherwise: an alpha channel
is dropped, palette images are expanded to RGB and CMYK ones converted by Pillow. Files are written
to a temporary file beside the destination and renamed onto it, so that a failed or interrupted
write never leaves a partial file at the destination.
"""
import os
import tempfile
from typing import List

import numpy
import torch
from PIL import Image, UnidentifiedImageError

from ..imaging.protocol import eight_bit

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm")

_GREY_MODES = {"1": 1.0, "L": 255.0, "LA": 255.0, "I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0,
               "I;16N": 65535.0, "I": 65535.0, "F": 1.0}


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
            try:
                rgb = image.convert("RGB")
            except ValueError as error:
                raise ImageDataError(f"{path}: unsupported pixel format '{mode}' ({error})") from None
            pixels = numpy.asarray(rgb, dtype=numpy.float32)
            pixels /= 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as error:
        raise ImageDataError(f"{path}: not a readable image ({error})") from None
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def image_format(path: str) -> str:
    """Pillow's name of the file format that ``path``'s extension asks for; ImageDataError if none."""
    extension = os.path.splitext(path)[1].lower()
    formats = Image.registered_extensions()
    if extension not in formats:
        raise ImageDataError(f"{path}: unknown image file extension '{extension}' (use .png, .jpg, .tif, ...)")
    return formats[extension]


def check_destination(path: str) -> None:
    """ImageDataError unless an image can be written at ``path``: a known extension, an existing folder."""
    image_format(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImageDataError(f"{path}: cannot write the image (no folder {folder})")


def to_uint8(image: torch.Tensor) -> numpy.ndarray:
    """(1, H, W) or (3, H, W) values in [0, 1] → uint8 (H, W) or (H, W, 3) (``imaging.protocol.eight_bit``:
    clamped, halves rounded up as MATLAB's uint8 conversion)."""
    if image.dim() != 3 or image.size(0) not in (1, 3):
        raise ValueError(f"to_uint8: expected an image (1, H, W) or (3, H, W), got shape {tuple(image.shape)}")
    pixels = (eight_bit(image.detach().float()) * 255.0).round().to(torch.uint8).cpu()
    return pixels[0].numpy() if image.size(0) == 1 else pixels.permute(1, 2, 0).numpy()


def save_pixels(path: str, pixels: numpy.ndarray) -> None:
    """Writes uint8 pixels (H, W) or (H, W, 3) to ``path`` in the format of its extension, through a
    temporary file in the same folder renamed onto ``path`` (nothing is left at ``path`` on failure)."""
    file_format = image_format(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=folder)
    except OSError as error:
        raise ImageDataError(f"{path}: cannot write the image ({error.strerror or error})") from None
    try:
        with os.fdopen(handle, "wb") as file:
            Image.fromarray(pixels).save(file, format=file_format)
        os.replace(temporary, path)
    except BaseException as error:
        os.unlink(temporary)
        if isinstance(error, (ValueError, OSError)):
            raise ImageDataError(f"{path}: cannot write the image ({error})") from None
        raise


def save_image(path: str, image: torch.Tensor) -> None:
    """Writes (1, H, W) or (3, H, W) values in [0, 1] (``to_uint8``) to ``path`` (``save_pixels``)."""
    save_pixels(path, to_uint8(image))


def image_files(folder: str) -> List[str]:
    """The paths of the files in ``folder`` (not its subfolders) with an image extension, sorted."""
    if not os.path.isdir(folder):
        raise ImageDataError(f"{folder}: no such folder of images")
    names = sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise ImageDataError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return [os.path.join(folder, name) for name in names]
