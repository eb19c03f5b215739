"""Regularisers of MatNet training (paper 2.3, 6.3, 6.5; design.md §4).

- ``weight_decay_penalty``: λ Σ (‖U‖²_F + ‖V‖²_F), output head included.
- ``sparsity_penalty``: β Σ_l KL(ρ ‖ ρ̄_l) on the mean activations of sigmoid hidden layers.
- ``constrain_unit_rows`` / ``remove_unit_rows``: the rows of every layer's U and V kept at unit
  Euclidean norm, as a reparametrisation that every ``torch.optim`` optimizer (LBFGS included) sees
  as an ordinary unconstrained problem.

The paper uses either weight decay (super-resolution) or the unit-norm constraint (MNIST), not both:
under the constraint ‖U‖²_F is the constant m (its number of rows), so weight decay on U and V would
add nothing.
"""
import math
from typing import Callable, Iterable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .nn.heads import BilinearSoftmaxHead, VectorizedSoftmaxHead
from .nn.layer import MatNetLayer
from .nn.multi_layer import MultiMatNetLayer

ModuleOrModules = Union[nn.Module, Iterable[nn.Module]]


def _unique_modules(modules: ModuleOrModules) -> List[nn.Module]:
    """Every module in ``modules`` and below, each once even if reachable twice (model and its head)."""
    container = nn.ModuleList([modules] if isinstance(modules, nn.Module) else list(modules))
    return list(container.modules())


def _decayed_matrices(module: nn.Module) -> List[torch.Tensor]:
    if isinstance(module, (MatNetLayer, BilinearSoftmaxHead)):
        return [module.u, module.v]
    if isinstance(module, MultiMatNetLayer):
        return [*module.us, *module.vs]
    if isinstance(module, VectorizedSoftmaxHead):
        return [module.weight]  # W of s = W vec(X) + b, the paper's Ū of Case 3
    return []


def weight_decay_penalty(modules: ModuleOrModules, weight: float) -> torch.Tensor:
    """λ Σ (‖U‖²_F + ‖V‖²_F) (paper section 2.3), summed over every weight matrix found.

    Args:
        modules: a model, a layer or head, or an iterable of them; searched recursively, each
            module counted once. Included: U and V of every ``MatNetLayer``; every U_j and V_j of
            every ``MultiMatNetLayer`` (so an autoencoder's encoder and decoders); Ū and V̄ of every
            ``BilinearSoftmaxHead``; W of every ``VectorizedSoftmaxHead`` (so the output head is
            included, as in the paper). Excluded: every bias. Under ``constrain_unit_rows`` the
            constrained U and V are the ones summed (a constant, so no gradient).
        weight: λ ≥ 0.

    Returns:
        A 0-dimensional tensor, differentiable in the included matrices.
    """
    if weight < 0:
        raise ValueError(f"weight_decay_penalty: weight (λ) must be non-negative, got {weight}")
    matrices = [matrix for module in _unique_modules(modules) for matrix in _decayed_matrices(module)]
    if not matrices:
        raise ValueError(
            "weight_decay_penalty: found no MatNetLayer, MultiMatNetLayer, BilinearSoftmaxHead or VectorizedSoftmaxHead in "
            f"modules (a {type(modules).__name__})"
        )
    return weight * sum(matrix.square().sum() for matrix in matrices)


def sparsity_penalty(
    activations: Sequence[torch.Tensor],
    target: float,
    weight: float,
    *,
    layers: Iterable[nn.Module],
    batch_mean: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> torch.Tensor:
    """β Σ_l R_l with R_l = Σ_ab [ρ log(ρ/ρ̄_l) + (1−ρ) log((1−ρ)/(1−ρ̄_l))] (paper eqs. 2.12, 2.13).

    ρ̄_l (m_l×n_l) is the mean of hidden layer l's output over the batch, elementwise; R_l is the
    Kullback–Leibler divergence between Bernoulli(ρ) and Bernoulli(ρ̄_l) summed over the units. Its
    gradient with respect to each sample's activation A_i is (β/N) (−ρ/ρ̄_l + (1−ρ)/(1−ρ̄_l)) (paper
    6.3, where the 1/N of the mean appears explicitly), obtained here by autograd.

    Typical use, one forward pass for both terms::

        logits, hidden = model.forward_with_hidden(x)
        loss = F.cross_entropy(logits, labels) + sparsity_penalty(hidden, 0.05, 1.0, layers=model.hidden_layers)

    Args:
        activations: the hidden layers' outputs, each (N, m_l, n_l) (any leading batch dimensions);
            ``model.hidden(x)``.
        target: ρ, strictly between 0 and 1 (the paper uses 0.05).
        weight: β ≥ 0.
        layers: the modules that produced ``activations``, one each, in the same order
            (``model.hidden_layers``); each has ``activation`` and ``out_shape`` attributes like
            ``MatNetLayer``. They make the domain check real: ρ̄ must lie in (0, 1), which only a
            sigmoid guarantees, so any other activation is a ValueError rather than a NaN or a
            meaningless number; each activation's shape must match its layer's ``out_shape``.
        batch_mean: computes ρ̄_l from an activation reshaped to (N, m_l, n_l); the default is the
            mean over dim 0. Data-parallel training passes the mean over the whole global batch,
            all-reduced over the processes (``apps.common.distributed.GlobalBatch.mean``), since
            the penalty is not linear in ρ̄.

    ρ̄ is clamped to [ε, 1 − ε] (ε the dtype's machine epsilon) so the logarithms stay finite when
    a sigmoid saturates in floating point. The clamp loses no useful gradient: ρ̄ rounds to 0 or 1
    only when every sample's output does, and there σ' = Y(1 − Y) is already 0.
    """
    layers = list(layers)
    if not activations:
        raise ValueError(
            "sparsity_penalty: activations is empty (a model without hidden layers has nothing to sparsify)"
        )
    if len(layers) != len(activations):
        raise ValueError(
            f"sparsity_penalty: expected one layer per activation, got {len(layers)} layers and "
            f"{len(activations)} activations"
        )
    if not 0 < target < 1:
        raise ValueError(f"sparsity_penalty: target (ρ) must be strictly between 0 and 1, got {target}")
    if weight < 0:
        raise ValueError(f"sparsity_penalty: weight (β) must be non-negative, got {weight}")
    divergences = []
    for index, (layer, activation) in enumerate(zip(layers, activations)):
        if layer.activation != "sigmoid":
            raise ValueError(
                f"sparsity_penalty: layers[{index}] has activation '{layer.activation}', whose outputs are "
                "not confined to (0, 1); the KL sparsity penalty needs 'sigmoid'"
            )
        m, n = layer.out_shape
        if activation.dim() < 3 or tuple(activation.shape[-2:]) != (m, n) or activation.numel() == 0:
            raise ValueError(
                f"sparsity_penalty: expected activations[{index}] of shape (N, {m}, {n}) with N ≥ 1, "
                f"got {tuple(activation.shape)}"
            )
        epsilon = torch.finfo(activation.dtype).eps
        samples = activation.reshape(-1, m, n)
        mean_activation = (samples.mean(dim=0) if batch_mean is None else batch_mean(samples)).clamp(epsilon, 1 - epsilon)  # ρ̄_l
        divergence = target * (math.log(target) - mean_activation.log()) + (1 - target) * (
            math.log1p(-target) - torch.log1p(-mean_activation)
        )
        divergences.append(divergence.sum())
    return weight * sum(divergences)


class UnitRowNorm(nn.Module):
    """The parametrisation W = W̃ / ‖rows of W̃‖: w_k = w̃_k / ‖w̃_k‖₂ for every row k.

    Registered with ``torch.nn.utils.parametrize``, the layer's ``u`` becomes this function of an
    unconstrained tensor ``parametrizations.u.original`` (W̃), which is what optimizers update.
    """

    def forward(self, unnormalized: torch.Tensor) -> torch.Tensor:
        return F.normalize(unnormalized, dim=-1)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        # W̃ = W with its rows normalised: forward(W̃) = W for every W with unit rows, and ‖w̃_k‖ = 1
        # makes the gradient through the normalisation (scaled by 1/‖w̃_k‖) start at the scale of W's.
        return F.normalize(weight, dim=-1)


def _has_unit_rows(layer: nn.Module, name: str) -> bool:
    return parametrize.is_parametrized(layer, name) and any(
        isinstance(parametrization, UnitRowNorm) for parametrization in layer.parametrizations[name]
    )


def _matnet_layers(function: str, model: nn.Module) -> List[MatNetLayer]:
    layers = [module for module in model.modules() if isinstance(module, MatNetLayer)]
    if not layers:
        raise ValueError(f"{function}: found no MatNetLayer in model (a {type(model).__name__})")
    return layers


def constrain_unit_rows(model: nn.Module) -> None:
    """Keep every row of U and V of every ``MatNetLayer`` in ``model`` at unit Euclidean norm.

    How: ``u`` and ``v`` become U = Ũ / ‖rows of Ũ‖ through ``torch.nn.utils.parametrize`` (see
    ``UnitRowNorm``). The optimizer updates the unconstrained Ũ (stored, row-normalised at
    registration, in ``layer.parametrizations.u.original``); every forward recomputes U from it, so
    the rows of U are exactly unit norm (to rounding) after any number of steps of any optimizer.
    The gradient reaching Ũ is the gradient of U projected onto each row's tangent space and scaled
    by 1/‖ũ_k‖: the loss does not depend on the rows' lengths.

    Effect on the model: each row u_k of U can only choose a direction; the scale of a layer's
    pre-activation Σ u_k X v_lᵀ is bounded by ‖X‖₂ and is made up by the bias and the next layer (or
    the head, which is left unconstrained so the logits can take any scale). Registering changes the
    function immediately (U's rows are normalised), and the state_dict keys become
    ``...parametrizations.u.original``.

    Why not a projection (renormalise the rows after each ``optimizer.step()``): LBFGS evaluates the
    closure at trial points during its line search and builds its curvature pairs from them; a
    projection applied afterwards moves the parameters to a point whose loss and gradient it never
    saw, so its line search and its quasi-Newton model describe a different function. A
    reparametrisation makes the objective a smooth function of unconstrained Ũ, which every
    ``torch.optim`` optimizer handles unchanged.

    Call before creating the optimizer (torch keeps the same Parameter objects, but an optimizer's
    state, such as Adam's moments, would describe the unnormalised coordinates). Layers already
    constrained are left as they are. ``remove_unit_rows`` undoes it.
    """
    for layer in _matnet_layers("constrain_unit_rows", model):
        for name in ("u", "v"):
            if not _has_unit_rows(layer, name):
                parametrize.register_parametrization(layer, name, UnitRowNorm())


def remove_unit_rows(model: nn.Module) -> None:
    """Undo ``constrain_unit_rows``: ``u`` and ``v`` become plain parameters again, holding their
    current (unit-row) values, so the model computes the same function. Removes every
    parametrisation of those tensors; layers without the constraint are left as they are."""
    for layer in _matnet_layers("remove_unit_rows", model):
        for name in ("u", "v"):
            if _has_unit_rows(layer, name):
                parametrize.remove_parametrizations(layer, name, leave_parametrized=True)
