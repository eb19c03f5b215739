"""Image operations of the super-resolution application, on float tensors in [0, 1]: colour
conversion, bicubic resizing, derivative images, patch extraction and merging, PSNR."""
from .colour import rgb_to_ycbcr, ycbcr_to_rgb
from .derivatives import DERIVATIVE_NAMES, derivative_images
from .patches import extract_patches, merge_patches, random_patches
from .psnr import psnr
from .resize import bicubic_resize, crop_to_multiple, downscale, upscale

__all__ = [
    "DERIVATIVE_NAMES",
    "bicubic_resize",
    "crop_to_multiple",
    "derivative_images",
    "downscale",
    "extract_patches",
    "merge_patches",
    "psnr",
    "random_patches",
    "rgb_to_ycbcr",
    "upscale",
    "ycbcr_to_rgb",
]
