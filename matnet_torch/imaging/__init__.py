"""Image operations of the super-resolution application, on float tensors in [0, 1]: colour
conversion, bicubic resizing (torch's and MATLAB's), derivative images, patch extraction and merging
(whole or streamed), PSNR and the evaluation protocols."""
from .colour import rgb_to_ycbcr, ycbcr_to_rgb
from .derivatives import DERIVATIVE_NAMES, derivative_images
from .patches import StreamingMerge, extract_patches, merge_patches, random_patches
from .psnr import psnr
from .resize import KERNELS, bicubic_resize, crop_to_multiple, downscale, upscale, upscale_rows

__all__ = [
    "DERIVATIVE_NAMES",
    "KERNELS",
    "StreamingMerge",
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
    "upscale_rows",
    "ycbcr_to_rgb",
]
