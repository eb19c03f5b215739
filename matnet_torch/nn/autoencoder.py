"""The multimodal MatNet autoencoder (paper section 3; design.md §5):

    encoder   H = σ(Σ_j U_j X^j V_jᵀ + B)          one MultiMatNetLayer over the D modalities
    decoders  X̂^j = σ(R_j H S_jᵀ + C_j)            one MatNetLayer per modality

trained on L = (1/2N) Σ_i Σ_j w_j ‖X̂_i^j − X_i^j‖²_F (w_j = 1 in the paper) + λ Σ (‖U_j‖² + ‖V_j‖² + ‖R_j‖² + ‖S_j‖²) + β KL(ρ ‖ ρ̄_H).
"""
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

from .. import losses, regularizers
from .arguments import activation_name, matrix_shape
from .layer import MatNetLayer
from .multi_layer import MultiMatNetLayer


class AutoencoderLoss(NamedTuple):
    """The paper's objective and its three terms (each a 0-dimensional tensor)."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    weight_decay: torch.Tensor
    sparsity: torch.Tensor


class MultimodalMatNetAutoencoder(nn.Module):
    """D modalities X^j (N, p_j, q_j) → one hidden matrix H (N, m, n) → D reconstructions X̂^j.

    Args:
        in_shapes: [(p_1, q_1), …, (p_D, q_D)], the modalities' matrix shapes (sizes may differ).
        hidden_shape: (m, n) of H.
        activation: σ of the encoder; "sigmoid" (the paper's) is the one the sparsity term accepts.
        output_activation: σ of the decoders; None means the same as ``activation``.

    ``encoder`` is a ``MultiMatNetLayer`` (parameters ``us[j]``, ``vs[j]``, ``bias``); ``decoders[j]``
    a ``MatNetLayer`` (R_j = ``u``, S_j = ``v``, C_j = ``bias``).
    """

    def __init__(
        self,
        in_shapes: Sequence[Sequence[int]],
        hidden_shape: Sequence[int],
        activation: str = "sigmoid",
        output_activation: Optional[str] = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner = type(self).__name__
        self.hidden_shape = matrix_shape(owner, "hidden_shape", hidden_shape)
        self.activation = activation_name(owner, "activation", activation)
        self.output_activation = activation_name(
            owner, "output_activation", activation if output_activation is None else output_activation
        )
        factory = {"device": device, "dtype": dtype}
        self.encoder = MultiMatNetLayer(in_shapes, self.hidden_shape, self.activation, **factory)
        self.in_shapes = self.encoder.in_shapes
        self.decoders = nn.ModuleList(
            MatNetLayer(self.hidden_shape, shape, self.output_activation, **factory) for shape in self.in_shapes
        )

    @property
    def hidden_layers(self) -> List[nn.Module]:
        """The layer whose output is H, for ``regularizers.sparsity_penalty``."""
        return [self.encoder]

    def encode(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """H (..., m, n) of the D modalities xs[j] (..., p_j, q_j)."""
        if len(xs) != len(self.in_shapes):
            raise ValueError(f"{type(self).__name__}: expected {len(self.in_shapes)} modalities, got {len(xs)}")
        for j, (x, shape) in enumerate(zip(xs, self.in_shapes)):
            if x.dim() < 2 or tuple(x.shape[-2:]) != shape:
                raise ValueError(
                    f"{type(self).__name__}: expected xs[{j}] of shape (..., {shape[0]}, {shape[1]}), got {tuple(x.shape)}"
                )
        return self.encoder(xs)

    def decode(self, hidden: torch.Tensor) -> List[torch.Tensor]:
        """[X̂^1, …, X̂^D] from H."""
        return [decoder(hidden) for decoder in self.decoders]

    def forward(self, xs: Sequence[torch.Tensor]) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """(the reconstructions [X̂^1, …, X̂^D], H)."""
        hidden = self.encode(xs)
        return self.decode(hidden), hidden

    def loss(
        self,
        xs: Sequence[torch.Tensor],
        targets: Optional[Sequence[torch.Tensor]] = None,
        weight_decay: float = 0.0,
        sparsity_target: float = 0.05,
        sparsity_weight: float = 0.0,
        *,
        reconstruction_weights: Optional[Sequence[float]] = None,
        batch_size: Optional[int] = None,
        batch_mean: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ) -> AutoencoderLoss:
        """The paper's objective on one batch (design.md §5), from one forward pass:

            (1/2N) Σ_i Σ_j ‖X̂_i^j − T_i^j‖²_F                       reconstruction
            + λ Σ_j (‖U_j‖²_F + ‖V_j‖²_F + ‖R_j‖²_F + ‖S_j‖²_F)      weight_decay = λ
            + β Σ_ab KL(ρ ‖ ρ̄_ab) with ρ̄ = mean_i H_i              sparsity_weight = β, sparsity_target = ρ

        ``targets`` T^j default to the inputs (a plain autoencoder); giving others trains a denoising
        one (inputs X^j, targets T^j). Biases are not decayed. A term with weight 0 is a zero tensor
        and is not computed (so β = 0 allows activations without values in (0, 1)).
        ``reconstruction_weights`` [w_1, …, w_D] ≥ 0 weight each modality's reconstruction term,
        (1/2N) Σ_i Σ_j w_j ‖X̂_i^j − T_i^j‖²_F (default: all 1, the paper's).

        Data-parallel training (``apps.common.distributed``), where ``xs`` is one process's share of a
        global batch of B samples: ``batch_size`` = B makes the reconstruction term the share's sum
        over B (``losses.matrix_regression_loss``), the share's part of the global batch's mean;
        ``batch_mean`` computes ρ̄ over the whole global batch (``GlobalBatch.mean``), since the KL
        term is not linear in ρ̄. The weight decay and the sparsity term are then the global batch's
        in full, and ``total`` their sum with this share's reconstruction part: a caller that adds the
        parts of W processes takes 1/W of each of the two (``GlobalBatch.part_of``).
        """
        targets = xs if targets is None else targets
        if len(targets) != len(xs):
            raise ValueError(f"{type(self).__name__}.loss: expected {len(xs)} targets, got {len(targets)}")
        weights = [1.0] * len(xs) if reconstruction_weights is None else list(reconstruction_weights)
        if len(weights) != len(xs) or not all(weight >= 0 for weight in weights) or not any(weight > 0 for weight in weights):
            raise ValueError(
                f"{type(self).__name__}.loss: expected {len(xs)} reconstruction_weights >= 0, not all 0, got {weights}"
            )
        hidden = self.encode(xs)
        reconstruction = sum(  # a modality of weight 0 is not decoded
            weight * losses.matrix_regression_loss(decoder(hidden), target, batch_size)
            for weight, decoder, target in zip(weights, self.decoders, targets) if weight > 0
        )
        zero = reconstruction.new_zeros(())
        decay = regularizers.weight_decay_penalty(self, weight_decay) if weight_decay > 0 else zero
        sparsity = (
            regularizers.sparsity_penalty([hidden], sparsity_target, sparsity_weight, layers=self.hidden_layers,
                                          batch_mean=batch_mean)
            if sparsity_weight > 0
            else zero
        )
        return AutoencoderLoss(reconstruction + decay + sparsity, reconstruction, decay, sparsity)

    def extra_repr(self) -> str:
        return (
            f"in_shapes={list(self.in_shapes)}, hidden_shape={self.hidden_shape}, "
            f"activation={self.activation!r}, output_activation={self.output_activation!r}"
        )
