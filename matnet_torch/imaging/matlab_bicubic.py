"""MATLAB's ``imresize(I, scale, 'bicubic')`` (antialiasing on, its default), separable, in float64.

Along one dimension of n_in samples resized to n_out with factor s, output sample i (1-based) sits at
the input coordinate

    u_i = i / s + ½ (1 − 1/s)                                   (pixel centres aligned)

and is Σ_k w_ik · I[j_ik] over the P = ⌈width⌉ + 2 input samples j_ik = ⌊u_i − width/2⌋ + k,
k = 0 … P − 1, with

    w_ik ∝ h(u_i − j_ik),   normalised so that Σ_k w_ik = 1,

    h(x) = cubic(x),            width = 4         when s ≥ 1 (interpolation)
    h(x) = s · cubic(s x),      width = 4 / s     when s < 1 (the kernel stretched: antialiasing)

    cubic(x) = 1.5|x|³ − 2.5|x|² + 1              |x| ≤ 1
             = −0.5|x|³ + 2.5|x|² − 4|x| + 2       1 < |x| ≤ 2        (Keys, a = −0.5)
             = 0                                   otherwise.

Indices outside 1 … n_in are mirrored with the edge sample repeated (symmetric padding: 0, −1, −2
read samples 1, 2, 3), and taps whose weight is 0 for every output are dropped, as MATLAB does.
MATLAB resizes the dimension with the smaller factor first, rows first when the factors are equal.

Each output is accumulated tap by tap, Σ_k in order of k, so a band of output rows computed on its
own equals the same rows of the whole resize bit for bit.
"""
import math
from typing import Optional, Tuple

import torch


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = −0.5 (the module docstring)."""
    ax = x.abs()
    near = (1.5 * ax - 2.5) * ax * ax + 1.0
    far = ((-0.5 * ax + 2.5) * ax - 4.0) * ax + 2.0
    return torch.where(ax <= 1.0, near, torch.where(ax <= 2.0, far, torch.zeros_like(ax)))


def contributions(in_length: int, out_length: int, scale: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(weights (out_length, P) float64, 0-based source indices (out_length, P)) of one dimension."""
    antialias = scale < 1.0
    width = 4.0 / scale if antialias else 4.0
    position = torch.arange(1, out_length + 1, dtype=torch.float64)
    centre = position / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(centre - width / 2.0)
    taps = math.ceil(width) + 2
    indices = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64)  # 1-based
    distance = centre.unsqueeze(1) - indices
    weights = scale * cubic(scale * distance) if antialias else cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(in_length), torch.arange(in_length - 1, -1, -1)])
    indices = mirror[(indices.long() - 1).remainder(2 * in_length)]
    used = (weights != 0).any(dim=0)
    return weights[:, used], indices[:, used]


def _resize_dimension(image: torch.Tensor, dim: int, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Σ_k weights[:, k] · image[indices[:, k]] along ``dim`` in float64, accumulated in order of k."""
    shape = [1] * image.dim()
    shape[dim] = -1
    result = None
    for k in range(weights.size(1)):
        term = image.index_select(dim, indices[:, k]).double() * weights[:, k].view(shape)
        result = term if result is None else result + term
    return result


def _scales(in_size: Tuple[int, int], size: Tuple[int, int], scale: Optional[float]) -> Tuple[float, float]:
    if scale is not None:
        return scale, scale
    return size[0] / in_size[0], size[1] / in_size[1]


def matlab_resize(image: torch.Tensor, size: Tuple[int, int], scale: Optional[float] = None) -> torch.Tensor:
    """``image`` (..., H, W) resized to (..., size[0], size[1]) as MATLAB's imresize; ``scale`` is the
    factor given to imresize (default size / input size per dimension)."""
    return matlab_resize_rows(image, size, scale, 0, size[0])


def matlab_resize_rows(image: torch.Tensor, size: Tuple[int, int], scale: Optional[float], start: int, stop: int) -> torch.Tensor:
    """Rows ``start`` to ``stop`` − 1 of ``matlab_resize(image, size, scale)``, from the rows they read."""
    height, width = image.shape[-2:]
    row_scale, column_scale = _scales((height, width), size, scale)
    row_weights, row_indices = contributions(height, size[0], row_scale)
    row_weights, row_indices = row_weights[start:stop], row_indices[start:stop]
    column_weights, column_indices = contributions(width, size[1], column_scale)
    if column_scale < row_scale:  # MATLAB's order: the dimension with the smaller factor first
        # Only the source rows this band reads need their columns resized.
        needed = torch.unique(row_indices)
        resized = _resize_dimension(image.index_select(-2, needed), -1, column_weights, column_indices)
        resized = _resize_dimension(resized, -2, row_weights, torch.searchsorted(needed, row_indices))
    else:
        resized = _resize_dimension(_resize_dimension(image, -2, row_weights, row_indices), -1, column_weights, column_indices)
    return resized.to(image.dtype)
