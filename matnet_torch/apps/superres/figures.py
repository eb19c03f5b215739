"""The super-resolution figures: a comparison panel per test image (the paper's Fig. 4) and the
learned weights (the paper's Fig. 3)."""
import torch

from ...imaging.superresolution import MODALITY_NAMES
from ...nn import MultimodalMatNetAutoencoder
from ..common.figures import grid, save_figure, show_image


def _zoom_box(height: int, width: int, scale: int):
    """(top, left, side) of the central square a quarter of the smaller side wide, on the high-resolution
    grid, with top, left and side multiples of the scale so that the low-resolution crop matches it."""
    side = max(scale, (min(height, width) // 4) // scale * scale)
    return (height - side) // 2 // scale * scale, (width - side) // 2 // scale * scale, side


def plot_comparison(path: str, name: str, network: str, low: torch.Tensor, truth: torch.Tensor, matnet: torch.Tensor,
                    bicubic: torch.Tensor, matnet_psnr: float, bicubic_psnr: float, scale: int) -> None:
    """Low-resolution input, truth, the network's (``network``: its name) and bicubic's upscaling side
    by side, images (C, H, W) in [0, 1]; below them, the same four enlarged at the image's centre."""
    height, width = truth.shape[-2:]
    figure, axes = grid(2, 4, (4.0, 4.0 * height / width + 0.4))
    panels = [
        (low, scale, f"input {low.shape[-2]}×{low.shape[-1]}"),
        (truth, 1, f"truth {height}×{width}"),
        (matnet, 1, f"{network} ×{scale}: {matnet_psnr:.2f} dB"),
        (bicubic, 1, f"bicubic ×{scale}: {bicubic_psnr:.2f} dB"),
    ]
    top, left, side = _zoom_box(height, width, scale)
    for column, (image, factor, title) in enumerate(panels):
        show_image(axes[0][column], image, title)
        crop = image[..., top // factor : (top + side) // factor, left // factor : (left + side) // factor]
        show_image(axes[1][column], crop, f"centre {side // factor}×{side // factor}, enlarged")
    save_figure(figure, path, f"{name}: luminance PSNR, {network} {matnet_psnr - bicubic_psnr:+.2f} dB over bicubic")


def plot_weights(model: MultimodalMatNetAutoencoder, path: str) -> None:
    """One row per modality j: the encoder's U_j (m×p), V_j (n×q) and the decoder's R_j (p×m), S_j (q×n)."""
    rows = len(model.in_shapes)
    figure, axes = grid(rows, 4, (2.2, 2.2))
    for j in range(rows):
        decoder = model.decoders[j]
        name = MODALITY_NAMES[j] if rows == len(MODALITY_NAMES) else f"modality {j + 1}"
        matrices = [
            (model.encoder.us[j], f"U{j + 1} ({name})"),
            (model.encoder.vs[j], f"V{j + 1}"),
            (decoder.u, f"R{j + 1}"),
            (decoder.v, f"S{j + 1}"),
        ]
        for axis, (matrix, title) in zip(axes[j], matrices):
            show_image(axis, matrix, f"{title} {tuple(matrix.shape)}")
    save_figure(figure, path, "Learned weights: encoder U_j, V_j and decoder R_j, S_j per modality")
