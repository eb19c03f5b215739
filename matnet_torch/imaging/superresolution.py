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
    contrast     ε > 0 normalises every patch's contrast (0: off): with μ and c² the mean and the
                 variance of the bicubic patch's pixels and c_ε = √(c² + ε²), the encoder sees
                 X¹ − μ and the centred derivatives divided by c_ε, and the decoders reconstruct
                 their targets' deviations from ½ divided by c_ε (the detail target becomes
                 ½ + gain · (truth − bicubic) / c_ε); at inference each patch's X̂¹ − ½ is multiplied
                 back by its c_ε before the overlaps are averaged. The network then sees every edge at
                 one contrast, and its estimate of the detail scales with the patch's contrast, as
                 the detail itself does (sparse-coding super-resolution normalises its patches so).
"""
from typing import Iterator, List, NamedTuple, Tuple

import torch
from torch import nn

from .derivatives import derivative_images
from .patches import StreamingMerge, random_patches
from .resize import crop_to_multiple, downscale, upscale, upscale_rows

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
    contrast: float = 0.0


def contrast_scales(image: torch.Tensor, epsilon: float) -> torch.Tensor:
    """(N, 1, 1): c_ε = √(c² + ε²), c² the variance of the pixels of each patch (N, p, q)."""
    return (image.var(dim=(-2, -1), correction=0, keepdim=True) + epsilon**2).sqrt()


def normalise_contrast(xs: List[torch.Tensor], scales: torch.Tensor) -> List[torch.Tensor]:
    """The centred modalities [X¹, …, X⁵] (each (N, p, q)) as the encoder sees them under
    ``Encoding.contrast``: X¹ minus its patch mean, every modality divided by its patch's c_ε (``scales``)."""
    return [(xs[0] - xs[0].mean(dim=(-2, -1), keepdim=True)) / scales, *(x / scales for x in xs[1:])]


def feature_images(upscaled: torch.Tensor) -> torch.Tensor:
    """(H, W) bicubic-upscaled luminance → (4, H, W): its derivatives X²…X⁵ mapped onto [0, 1]."""
    derivatives = derivative_images(upscaled)
    return 0.5 + _DERIVATIVE_SCALES.to(derivatives).view(4, 1, 1) * derivatives


def low_resolution_pair(truth: torch.Tensor, scale: int, kernel: str = "pytorch") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(truth cropped to sides divisible by s, its bicubic downscaling by 1/s, that upscaled back by s),
    both resizings with the bicubic ``kernel`` (``resize.KERNELS``)."""
    truth = crop_to_multiple(truth, scale)
    low = downscale(truth, scale, kernel)
    return truth, low, upscale(low, scale, kernel)


def training_patches(
    truth: torch.Tensor, scale: int, size: int, count: int, generator: torch.Generator, kernel: str = "pytorch"
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``count`` random patch positions of one high-resolution luminance image (H, W).

    Returns (modalities (count, 5, size, size): truth, X²…X⁵; bicubic (count, size, size): the
    bicubic-upscaled patch at the same positions, the X¹ of inference).
    """
    truth, _, upscaled = low_resolution_pair(truth, scale, kernel)
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
    if encoding.contrast == 0:
        return inputs - 0.5, targets
    # c_ε of the bicubic patch, the X¹ of inference, whatever X¹ holds in training
    scales = contrast_scales(bicubic, encoding.contrast)
    inputs = torch.stack(normalise_contrast(list((inputs - 0.5).unbind(1)), scales), dim=1)
    return inputs, 0.5 + (targets - 0.5) / scales.unsqueeze(1)


def modality_list(patches: torch.Tensor) -> List[torch.Tensor]:
    """(N, 5, p, q) → [X¹, …, X⁵], each (N, p, q), the autoencoder's input list."""
    return list(patches.unbind(1))


def _windows(modalities: torch.Tensor, size: int, stride: int) -> List[torch.Tensor]:
    """(5, rows, W) with (rows − size) a multiple of the stride → per modality its patches of the
    grid, row by row, each (L, size, size) contiguous: one copy of the pixels, no intermediate."""
    extra_columns = (-(modalities.size(-1) - size)) % stride  # the grid's extension (``patches``)
    if extra_columns:
        modalities = torch.cat([modalities, modalities[..., -1:].expand(-1, -1, extra_columns)], dim=-1)
    grid = modalities.unfold(1, size, stride).unfold(2, size, stride)  # (5, grid rows, grid columns, size, size)
    return [windows.reshape(-1, size, size) for windows in grid]


def _modality_rows(low: torch.Tensor, scale: int, start: int, stop: int, kernel: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """(bicubic rows start … stop − 1 of the ×s image (n, W), the five centred modalities of those
    rows (5, n, W)) from the low-resolution image alone: the derivatives read one row either side."""
    height = scale * low.size(-2)
    first, last = max(0, start - 1), min(height, stop + 1)
    upscaled = upscale_rows(low, scale, first, last, kernel)
    features = feature_images(upscaled)[:, start - first : stop - first]
    upscaled = upscaled[start - first : stop - first]
    return upscaled, torch.cat([upscaled.unsqueeze(0), features]) - 0.5


@torch.no_grad()
def super_resolve_rows(
    model: nn.Module,
    low: torch.Tensor,
    scale: int,
    size: int,
    encoding: Encoding = Encoding(),
    stride: int = 1,
    kernel: str = "pytorch",
    batch_size: int = 8192,
) -> Iterator[Tuple[int, torch.Tensor]]:
    """The ×s luminance estimate of a low-resolution luminance image ``low`` (h, w), as bands of rows:
    yields (first row, rows (n, s·w)) top to bottom until all s·h rows are out.

    Every sliding-window patch (``stride`` ≤ ``size`` apart; the grid as ``extract_patches``) of the
    bicubic-upscaled image and of its feature images, centred, goes through the encoder and the image
    modality's decoder of ``model`` (a ``MultimodalMatNetAutoencoder``; the other decoders are not
    needed), whole grid rows of about ``batch_size`` patches at a time; the reconstructions X̂¹ are
    averaged where they overlap (``StreamingMerge``), decoded (``Encoding``) and clamped to [0, 1]. Memory beyond ``low``
    is that of one batch and a band of ``size`` rows, whatever the image size; the result does not
    depend on ``batch_size`` as long as the model treats each patch on its own.
    """
    height, width = scale * low.size(-2), scale * low.size(-1)
    merge = StreamingMerge((height, width), size, stride, low.dtype)
    rows_per_batch = max(1, batch_size // merge.grid[1])
    for grid_row in range(0, merge.grid[0], rows_per_batch):
        rows = min(rows_per_batch, merge.grid[0] - grid_row)
        top, bottom = grid_row * stride, (grid_row + rows - 1) * stride + size  # rows of the extended grid
        upscaled, modalities = _modality_rows(low, scale, top, min(bottom, height), kernel)
        if bottom > height:  # the grid's extension repeats the last row
            modalities = torch.cat([modalities, modalities[:, -1:].expand(-1, bottom - height, -1)], dim=1)
        windows = _windows(modalities, size, stride)
        if encoding.contrast > 0:
            scales = contrast_scales(windows[0], encoding.contrast)
            outputs = 0.5 + (model.decoders[0](model.encode(normalise_contrast(windows, scales))) - 0.5) * scales
        else:
            outputs = model.decoders[0](model.encode(windows))  # X̂¹ only
        first, merged = merge.add(outputs)
        if encoding.target == "detail":
            merged = upscaled[first - top : first - top + len(merged)] + (merged - 0.5) / encoding.detail_gain
        yield first, merged.clamp(0.0, 1.0)


def super_resolve(model: nn.Module, low: torch.Tensor, scale: int, size: int, encoding: Encoding = Encoding(),
                  stride: int = 1, kernel: str = "pytorch", batch_size: int = 8192) -> torch.Tensor:
    """The whole (s·h, s·w) estimate of ``super_resolve_rows``."""
    bands = super_resolve_rows(model, low, scale, size, encoding, stride, kernel, batch_size)
    return torch.cat([rows for _, rows in bands])
