"""Training batches with random translations (the MNIST app's ``--shift`` augmentation).

    shifts = RandomShifts(images, max_shift)          # images (N, H, W), padded once
    x = shifts.batch(indices, generator)              # (len(indices), H, W)

Image i of the batch is images[indices[i]] translated by its own (dy, dx), drawn uniformly from
[-max_shift, max_shift]² with ``generator`` (CPU), zero filled: x[i, r, c] = image(r - dy, c - dx),
0 outside the image.

The set is zero-padded by max_shift on every side once, (N, H + 2s, W + 2s). Row r of a translated
image is then W consecutive padded pixels, starting at padded (r + s - dy, s - dx), so a whole batch
is n·H rows of a view of the padded set whose row k is the W pixels from flat position k: one
``index_select`` selects the batch's images and translates them in a single copy, with an index of
n·H entries. (Selecting, padding and then gathering per pixel, with an n·H·W index, took 1.7 times as
long: 225 against 134 µs per batch of 128 from 55,000 images, one thread on Zen 4; and in training,
where the model's work evicts the tables from the caches, the gap was wider.)
"""
import torch
import torch.nn.functional as F


class RandomShifts:
    """Randomly translated batches of a fixed set of images (module docstring)."""

    def __init__(self, images: torch.Tensor, max_shift: int):
        count, self.height, self.width = images.shape
        self.max_shift = max_shift
        padded = F.pad(images, (max_shift,) * 4).reshape(-1)  # a fresh contiguous copy
        self.padded_width = self.width + 2 * max_shift
        self.padded_size = (self.height + 2 * max_shift) * self.padded_width
        # Row k of the view: padded pixels k … k + W - 1 (rows overlap; the view only reads).
        self.rows = padded.as_strided((padded.numel() - self.width + 1, self.width), (1, 1))
        self.row_offsets = torch.arange(self.height, device=images.device) * self.padded_width

    def batch(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The images ``indices`` (a 1-D int64 tensor on the images' device), each translated at random."""
        s = self.max_shift
        dy, dx = torch.randint(-s, s + 1, (2, len(indices)), generator=generator).to(indices.device)
        first_row = indices * self.padded_size + (s - dy) * self.padded_width + (s - dx)
        rows = (first_row.view(-1, 1) + self.row_offsets).view(-1)
        return self.rows.index_select(0, rows).view(len(indices), self.height, self.width)
