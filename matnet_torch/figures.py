"""The MNIST figures of the paper, drawn from a trained classifier with matplotlib's Agg backend.

Fig. 1: the learned U, V and B of every hidden layer. Fig. 2: the first 100 test digits beside the
outputs of every hidden layer for the same digits, each as a 10×10 mosaic.
"""
from typing import List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import torch  # noqa: E402
from torch import nn  # noqa: E402


def mosaic(matrices: torch.Tensor, columns: int = 10, gap: int = 1) -> torch.Tensor:
    """(N, h, w) matrices tiled row by row into one image, ``gap`` pixels of NaN between."""
    count, height, width = matrices.shape
    rows = -(-count // columns)
    tiled = torch.full((rows * (height + gap) - gap, columns * (width + gap) - gap), float("nan"))
    for index, matrix in enumerate(matrices):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        tiled[top : top + height, left : left + width] = matrix
    return tiled


# Gray values; NaN (the gaps of a mosaic) in blue, so white outputs stay distinct from the gaps.
_COLORMAP = matplotlib.colormaps["gray"].with_extremes(bad="tab:blue")


def _show(axis, image: torch.Tensor, title: str) -> None:
    axis.imshow(image.detach().cpu().numpy(), cmap=_COLORMAP, interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])


def plot_weights(model: nn.Module, path: str) -> None:
    """Fig. 1: one row per hidden layer l showing U_l (m×p), V_l (n×q) and B_l (m×n) as gray images."""
    layers = list(model.matnet_layers)
    figure, axes = plt.subplots(len(layers), 3, figsize=(9, 3 * len(layers)), squeeze=False)
    for row, layer in enumerate(layers, start=1):
        u_axis, v_axis, bias_axis = axes[row - 1]
        _show(u_axis, layer.u, f"U{row} {tuple(layer.u.shape)}")
        _show(v_axis, layer.v, f"V{row} {tuple(layer.v.shape)}")
        if layer.bias is None:
            bias_axis.axis("off")
        else:
            _show(bias_axis, layer.bias, f"B{row} {tuple(layer.bias.shape)}")
    figure.suptitle("Learned weights of the hidden layers")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@torch.no_grad()
def plot_hidden_outputs(model: nn.Module, images: torch.Tensor, path: str) -> None:
    """Fig. 2: the first 100 of ``images`` (N, 28, 28) and each hidden layer's outputs for them."""
    digits = images[:100]
    was_training = model.training
    model.eval()
    hidden: List[torch.Tensor] = model.hidden(digits)
    model.train(was_training)
    panels = [("(a) first test digits", digits)] + [
        (f"({chr(ord('b') + index)}) hidden layer {index + 1} {tuple(output.shape[-2:])}", output)
        for index, output in enumerate(hidden)
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5.4), squeeze=False)
    for axis, (title, matrices) in zip(axes[0], panels):
        _show(axis, mosaic(matrices), title)
    figure.suptitle("Hidden layer outputs of MatNet for MNIST")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
