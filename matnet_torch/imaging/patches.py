"""Sliding-window patches of images, and their merging by averaging the overlaps.

The patch grid starts at the top-left pixel and steps by ``stride``. So that every pixel is covered,
the image is first extended at the bottom and right by repeating its last row and column until
(H − size) and (W − size) are multiples of the stride; the last row and column of patches may
therefore reach into that extension, and merging crops it away again. With stride 1 (or any stride
dividing H − size and W − size) there is no extension.

Both directions are single ``torch.nn.functional`` calls (``unfold`` and ``fold``), no loops over
pixels: merging folds the patches (summing overlapping values) and divides by the fold of ones
(the number of patches covering each pixel).
"""
from typing import Sequence, Tuple

import torch
from torch.nn import functional as F


def _grid_extension(function: str, height: int, width: int, size: int, stride: int) -> Tuple[int, int]:
    """(rows, columns) to append so that the patch grid ends exactly at the image's edge."""
    if size < 1 or stride < 1:
        raise ValueError(f"{function}: size and stride must be positive, got size {size} and stride {stride}")
    if height < size or width < size:
        raise ValueError(f"{function}: image of {height}×{width} pixels is smaller than one {size}×{size} patch")
    return (-(height - size)) % stride, (-(width - size)) % stride


def extract_patches(image: torch.Tensor, size: int, stride: int = 1) -> torch.Tensor:
    """(..., H, W) → (L, ..., size, size): every patch of the grid, row by row, each with all the
    leading channels of ``image`` (for example the five modalities of one position together)."""
    if image.dim() < 2:
        raise ValueError(f"extract_patches: expected an image (..., H, W), got shape {tuple(image.shape)}")
    leading, (height, width) = image.shape[:-2], image.shape[-2:]
    extra_rows, extra_columns = _grid_extension("extract_patches", height, width, size, stride)
    batch = image.reshape(1, -1, height, width)
    if extra_rows or extra_columns:
        batch = F.pad(batch, (0, extra_columns, 0, extra_rows), mode="replicate")
    columns = F.unfold(batch, kernel_size=size, stride=stride)  # (1, C·size·size, L)
    return columns[0].mT.reshape(-1, *leading, size, size)


def random_patches(image: torch.Tensor, size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """(..., H, W) → (count, ..., size, size): patches at top-left corners drawn uniformly (with
    replacement) from the (H − size + 1)(W − size + 1) positions; one gather, no loop over pixels."""
    leading, (height, width) = image.shape[:-2], image.shape[-2:]
    _grid_extension("random_patches", height, width, size, 1)
    tops = torch.randint(height - size + 1, (count, 1, 1), generator=generator)
    lefts = torch.randint(width - size + 1, (count, 1, 1), generator=generator)
    offsets = torch.arange(size)
    rows, columns = tops + offsets.view(1, size, 1), lefts + offsets.view(1, 1, size)  # (count, size, size)
    flat = image.reshape(-1, height * width)
    gathered = flat[:, (rows * width + columns).reshape(-1)]  # (C, count·size·size)
    return gathered.reshape(-1, count, size, size).transpose(0, 1).reshape(count, *leading, size, size)


def merge_patches(patches: torch.Tensor, image_shape: Sequence[int], stride: int = 1) -> torch.Tensor:
    """(L, ..., size, size) patches of ``extract_patches(image, size, stride)`` → the (..., H, W)
    image whose every pixel is the mean of the patch values covering it; ``image_shape`` is (H, W)."""
    size = patches.size(-1)
    height, width = image_shape
    if patches.dim() < 3 or patches.size(-2) != size:
        raise ValueError(f"merge_patches: expected patches (L, ..., size, size), got shape {tuple(patches.shape)}")
    extra_rows, extra_columns = _grid_extension("merge_patches", height, width, size, stride)
    grid = ((height + extra_rows - size) // stride + 1, (width + extra_columns - size) // stride + 1)
    if patches.size(0) != grid[0] * grid[1]:
        raise ValueError(
            f"merge_patches: a {height}×{width} image with {size}×{size} patches at stride {stride} has "
            f"{grid[0] * grid[1]} patches, got {patches.size(0)}"
        )
    leading = patches.shape[1:-2]
    columns = patches.reshape(patches.size(0), -1).mT.unsqueeze(0)  # (1, C·size·size, L)
    extended = (height + extra_rows, width + extra_columns)
    sums = F.fold(columns, extended, kernel_size=size, stride=stride)
    counts = F.fold(torch.ones_like(columns[:, : size * size]), extended, kernel_size=size, stride=stride)
    merged = (sums / counts)[0, :, :height, :width]
    return merged.reshape(*leading, height, width)


def _coverage(length: int, size: int, stride: int) -> torch.Tensor:
    """How many grid windows (starts 0, stride, … ≤ length − size) cover each of ``length`` positions."""
    starts = torch.arange(0, length - size + 1, stride)
    marks = torch.zeros(length + 1)
    marks.index_add_(0, starts, torch.ones(len(starts)))
    marks.index_add_(0, starts + size, -torch.ones(len(starts)))
    return marks.cumsum(0)[:length]


class StreamingMerge:
    """``merge_patches`` for a grid delivered one or more grid rows at a time, top to bottom, that
    hands out each image row once no later patch covers it: memory for ``size`` rows of sums, not
    the image.

    A pixel is Σ (patch values over it) / (number of patches over it). The sums are accumulated grid
    row by grid row, in order of the patch's top row, so the result does not depend on how the rows
    are grouped into calls; it equals ``merge_patches`` up to the order of those additions. The
    count over (r, c) is the product of the windows covering row r and those covering column c.
    """

    def __init__(self, image_shape: Sequence[int], size: int, stride: int, dtype: torch.dtype = torch.float32):
        height, width = image_shape
        if stride > size:
            raise ValueError(f"StreamingMerge: stride {stride} larger than the patch size {size} leaves pixels uncovered")
        extra_rows, extra_columns = _grid_extension("StreamingMerge", height, width, size, stride)
        self.height, self.width, self.size, self.stride = height, width, size, stride
        self.extended = (height + extra_rows, width + extra_columns)
        self.grid = ((self.extended[0] - size) // stride + 1, (self.extended[1] - size) // stride + 1)
        self._row_counts = _coverage(self.extended[0], size, stride).to(dtype)
        self._column_counts = _coverage(self.extended[1], size, stride)[:width].to(dtype)
        self._sums = torch.zeros(size, self.extended[1], dtype=dtype)  # rows top … top + size − 1
        self._top = 0  # image row of the next grid row's patches

    def add(self, patches: torch.Tensor) -> Tuple[int, torch.Tensor]:
        """``patches`` (k·grid columns, size, size): the next k grid rows, row by row. Returns (first
        row, rows (n, W)) of the image finished by them: n = k·stride rows, all the rest after the
        last grid row, none beyond the image."""
        columns = self.grid[1]
        if patches.dim() != 3 or patches.size(0) % columns or patches.shape[1:] != (self.size, self.size):
            raise ValueError(
                f"StreamingMerge.add: expected whole grid rows of {columns} patches (k·{columns}, {self.size}, "
                f"{self.size}), got shape {tuple(patches.shape)}"
            )
        rows = patches.size(0) // columns
        # Each grid row folded on its own: (rows, size·size, columns) → (rows, 1, size, extended width).
        slabs = F.fold(patches.reshape(rows, columns, -1).mT.to(self._sums.dtype), (self.size, self.extended[1]),
                       kernel_size=self.size, stride=self.stride)[:, 0]
        first, finished = self._top, []
        for slab in slabs:
            self._sums += slab
            last = self._top + self.stride >= self.extended[0] - self.size + 1
            done = self.size if last else self.stride
            finished.append(self._sums[:done].clone())
            self._sums = torch.cat([self._sums[done:], self._sums.new_zeros(done, self.extended[1])])
            self._top += done
        sums = torch.cat(finished)[:, : self.width]
        counts = self._row_counts[first : first + len(sums), None] * self._column_counts
        keep = max(0, min(len(sums), self.height - first))
        return first, (sums / counts)[:keep]
