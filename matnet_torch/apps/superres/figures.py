"""The super-resolution figures: a comparison panel per test image (the paper's Fig. 4) and the
learned weights (the paper's Fig. 3)."""
import torch

from ...imaging.superresolution import MODALITY_NAMES
from ...nn import MultimodalMatNetAutoencoder
from ..common.figures import grid, save_figure, show_image


def plot_comparison(path: str, name: str, low: torch.Tensor, truth: torch.Tensor, matnet: torch.Tensor,
                    bicubic: torch.Tensor, matnet_psnr: float, bicubic_psnr: float, scale: int) -> None:
    """Low-resolution input, truth, MatNet and bicubic side by side, images (C, H, W) in [0, 1]."""
    figure, axes = grid(1, 4, (4.0, 4.0 * truth.shape[-2] / truth.shape[-1] + 0.4))
    panels = [
        (low, f"input {low.shape[-2]}×{low.shape[-1]}"),
        (truth, f"truth {truth.shape[-2]}×{truth.shape[-1]}"),
        (matnet, f"MatNet ×{scale}: {matnet_psnr:.2f} dB"),
        (bicubic, f"bicubic ×{scale}: {bicubic_psnr:.2f} dB"),
    ]
    for axis, (image, title) in zip(axes[0], panels):
        show_image(axis, image, title)
    save_figure(figure, path, f"{name}: luminance PSNR, MatNet {matnet_psnr - bicubic_psnr:+.2f} dB over bicubic")


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
