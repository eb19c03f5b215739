"""The control: SRCNN 9-1-5 (Dong et al. 2014; 64 and 32 filters, 8129 parameters) on the bicubic
image, trained by the same tool on the same patches and evaluated by the same code as MatNet.

    F1 = relu(W1 ∗ Y + b1)     64 filters 9×9
    F2 = relu(W2 ∗ F1 + b2)    32 filters 1×1
    F  = W3 ∗ F2 + b3          1 filter 5×5

Y is the bicubic-upscaled luminance, centred (minus ½, as MatNet's X¹). Convolutions are unpadded,
so a p×p training patch yields its central (p − 12)×(p − 12) pixels; F is the detail in MatNet's
target encoding, ½ + gain · (truth − bicubic), so the decoding, the objective's reconstruction term
((1/2N) Σ ‖F − T‖² over those pixels) and the evaluation are MatNet's. At inference each band of
rows is convolved with 6 rows of context either side, the image's edges repeated (replicate padding).
"""
from typing import Iterator, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ...imaging import upscale_rows
from ...imaging.superresolution import Encoding

MARGIN = 6  # (9 − 1)/2 + (5 − 1)/2: the receptive field's radius


class SRCNN(nn.Module):
    def __init__(self, filters: Tuple[int, int] = (64, 32)):
        super().__init__()
        self.extract = nn.Conv2d(1, filters[0], 9)
        self.map = nn.Conv2d(filters[0], filters[1], 1)
        self.reconstruct = nn.Conv2d(filters[1], 1, 5)

    def forward(self, centred: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) centred bicubic luminance → (N, 1, H − 12, W − 12) encoded detail."""
        return self.reconstruct(F.relu(self.map(F.relu(self.extract(centred)))))


def srcnn_reconstruction(model: SRCNN, inputs: torch.Tensor, targets: torch.Tensor, batch_size: Optional[int] = None) -> torch.Tensor:
    """(1/2B) Σ ‖F − T‖² on training pairs (N, 5, p, q) (``training_pairs``): the image modality's
    input X¹ and the centre of its target; B = ``batch_size``, by default N (a share of a global
    batch of B samples gets its part of the global batch's mean)."""
    prediction = model(inputs[:, :1])
    centre = targets[:, :1, MARGIN:-MARGIN, MARGIN:-MARGIN]
    return 0.5 * (prediction - centre).square().sum() / (len(inputs) if batch_size is None else batch_size)


@torch.no_grad()
def srcnn_rows(model: SRCNN, low: torch.Tensor, scale: int, encoding: Encoding, kernel: str,
               rows_per_band: int = 64) -> Iterator[Tuple[int, torch.Tensor]]:
    """(first row, rows (n, s·w)) bands of the ×s luminance estimate of ``low`` (h, w), as
    ``super_resolve_rows`` yields MatNet's."""
    height = scale * low.size(-2)
    for start in range(0, height, rows_per_band):
        stop = min(height, start + rows_per_band)
        first, last = max(0, start - MARGIN), min(height, stop + MARGIN)
        upscaled = upscale_rows(low, scale, first, last, kernel)
        # context rows beyond the image repeat its edge, as do the columns either side
        padded = F.pad(upscaled[None, None], (MARGIN, MARGIN, MARGIN - (start - first), MARGIN - (last - stop)), mode="replicate")
        detail = model(padded - 0.5)[0, 0]
        band = upscaled[start - first : stop - first]
        yield start, (band + (detail - 0.5) / encoding.detail_gain).clamp(0.0, 1.0)
