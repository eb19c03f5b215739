"""Figure helpers shared by the apps, drawn with matplotlib's Agg backend (no display needed).

API:

    mosaic(matrices, columns=10, gap=1)        (N, h, w) -> one image tensor, NaN in the gaps
    figure, axes = grid(rows, columns, size)   a rows x columns grid of axes (always 2-D), size = the
                                               (width, height) in inches of one panel
    show_image(axis, image, title)             a 2-D tensor as a gray image, NaN in blue, no ticks
    save_figure(figure, path, title)           suptitle, tight layout, PNG at 120 dpi, figure closed
"""
from typing import Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import torch  # noqa: E402

# Gray values; NaN (the gaps of a mosaic) in blue, so white pixels stay distinct from the gaps.
_COLORMAP = matplotlib.colormaps["gray"].with_extremes(bad="tab:blue")


def mosaic(matrices: torch.Tensor, columns: int = 10, gap: int = 1) -> torch.Tensor:
    """(N, h, w) matrices tiled row by row into one image, ``gap`` pixels of NaN between."""
    count, height, width = matrices.shape
    rows = -(-count // columns)
    tiled = torch.full((rows * (height + gap) - gap, columns * (width + gap) - gap), float("nan"))
    for index, matrix in enumerate(matrices):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        tiled[top : top + height, left : left + width] = matrix
    return tiled


def grid(rows: int, columns: int, size: Tuple[float, float]):
    """(figure, axes) with axes[row][column] for a rows x columns grid of panels of ``size`` inches."""
    return plt.subplots(rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False)


def show_image(axis, image: torch.Tensor, title: str) -> None:
    """Draws the 2-D tensor ``image`` on ``axis`` in gray, NaN in blue, titled, without ticks."""
    axis.imshow(image.detach().cpu().float().numpy(), cmap=_COLORMAP, interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])


def save_figure(figure, path: str, title: str) -> None:
    """Titles ``figure``, writes it to ``path`` as PNG and closes it."""
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
