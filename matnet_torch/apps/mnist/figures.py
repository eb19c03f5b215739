"""The MNIST figures of the paper, drawn from a trained classifier (helpers: ``common.figures``).

Fig. 1: the learned U, V and B of every hidden layer. Fig. 2: the first 100 test digits beside the
outputs of every hidden layer for the same digits, each as a 10×10 mosaic.
"""
from typing import List

import torch
from torch import nn

from ..common.figures import grid, mosaic, save_figure, show_image


def plot_weights(model: nn.Module, path: str) -> None:
    """Fig. 1: one row per hidden layer l showing U_l (m×p), V_l (n×q) and B_l (m×n) as gray images."""
    layers = list(model.matnet_layers)
    figure, axes = grid(len(layers), 3, size=(3, 3))
    for row, layer in enumerate(layers, start=1):
        u_axis, v_axis, bias_axis = axes[row - 1]
        show_image(u_axis, layer.u, f"U{row} {tuple(layer.u.shape)}")
        show_image(v_axis, layer.v, f"V{row} {tuple(layer.v.shape)}")
        if layer.bias is None:
            bias_axis.axis("off")
        else:
            show_image(bias_axis, layer.bias, f"B{row} {tuple(layer.bias.shape)}")
    save_figure(figure, path, "Learned weights of the hidden layers")


@torch.no_grad()
def plot_hidden_outputs(model: nn.Module, images: torch.Tensor, path: str) -> None:
    """Fig. 2: the first 100 of ``images`` (N, 28, 28) and each hidden layer's outputs for them."""
    digits = images[:100]
    was_training = model.training
    model.eval()
    hidden: List[torch.Tensor] = [output.cpu() for output in model.hidden(digits)]
    model.train(was_training)
    panels = [("(a) first test digits", digits.cpu())] + [
        (f"({chr(ord('b') + index)}) hidden layer {index + 1} {tuple(output.shape[-2:])}", output)
        for index, output in enumerate(hidden)
    ]
    figure, axes = grid(1, len(panels), size=(5, 5.4))
    for axis, (title, matrices) in zip(axes[0], panels):
        show_image(axis, mosaic(matrices), title)
    save_figure(figure, path, "Hidden layer outputs of MatNet for MNIST")
