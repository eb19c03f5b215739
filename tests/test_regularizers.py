"""Weight decay, the KL sparsity penalty and the unit-row reparametrisation of
matnet_torch.regularizers. Training under the constraint, with every optimizer, is in test_models.py."""
import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from matnet_torch.nn import MatNetClassifier, MatNetLayer, MatNetRegressor
from matnet_torch.regularizers import (
    UnitRowNorm,
    constrain_unit_rows,
    remove_unit_rows,
    sparsity_penalty,
    weight_decay_penalty,
)

# ---------------------------------------------------------------------------------------------- weight decay


def model_with_constant_weights(head):
    """3×3 → 2×2 → 2 classes, every weight matrix filled with one constant and biases with 100."""
    model = MatNetClassifier((3, 3), [(2, 2)], 2, head=head)
    with torch.no_grad():
        layer = model.matnet_layers[0]
        layer.u.fill_(1.0)  # 2×3
        layer.v.fill_(2.0)  # 2×3
        layer.bias.fill_(100.0)
        for name, parameter in model.head.named_parameters():
            parameter.fill_(100.0 if name == "bias" else 0.5)
    return model


@pytest.mark.parametrize(
    "head, expected",
    [
        # λ (‖U‖² + ‖V‖² + ‖W‖²) = 0.1 · (6·1 + 6·4 + 8·0.25), W 2×4; biases excluded
        ("vec", 0.1 * (6 + 24 + 2)),
        # λ (‖U‖² + ‖V‖² + ‖Ū‖² + ‖V̄‖²) = 0.1 · (6 + 24 + 4·0.25 + 4·0.25), Ū and V̄ 2×2
        ("bilinear", 0.1 * (6 + 24 + 1 + 1)),
    ],
)
def test_weight_decay_by_hand(head, expected):
    model = model_with_constant_weights(head)
    torch.testing.assert_close(weight_decay_penalty(model, 0.1), torch.tensor(expected))
    # the head reachable twice is counted once; the layer alone leaves out the head
    torch.testing.assert_close(weight_decay_penalty([model, model.head], 0.1), torch.tensor(expected))
    torch.testing.assert_close(weight_decay_penalty(model.matnet_layers, 0.1), torch.tensor(0.1 * 30))


def test_weight_decay_gradient_is_two_lambda_w():
    torch.manual_seed(0)
    model = MatNetClassifier((3, 3), [(2, 2)], 2)
    weight_decay_penalty(model, 0.1).backward()
    layer = model.matnet_layers[0]
    for parameter in (layer.u, layer.v, model.head.weight):
        torch.testing.assert_close(parameter.grad, 0.2 * parameter.detach())
    assert layer.bias.grad is None and model.head.bias.grad is None


@pytest.mark.parametrize(
    "modules, weight, message",
    [
        (MatNetClassifier((3, 3), [], 2), -1.0, r"weight_decay_penalty: weight \(λ\) must be non-negative, got -1.0"),
        (nn.Linear(3, 2), 0.1, "weight_decay_penalty: found no MatNetLayer, MultiMatNetLayer, BilinearSoftmaxHead or VectorizedSoftmaxHead"),
        ([], 0.1, "weight_decay_penalty: found no MatNetLayer"),
    ],
)
def test_weight_decay_rejects(modules, weight, message):
    with pytest.raises(ValueError, match=message):
        weight_decay_penalty(modules, weight)


# ---------------------------------------------------------------------------------------------- sparsity


def direct_sparsity(activations, target, weight):
    """β Σ_l Σ_ab KL(ρ ‖ ρ̄_l), written out in float64 for one (N, m, n) activation per layer."""
    total = 0.0
    for activation in activations:
        mean = activation.sum(dim=0) / activation.shape[0]
        total = total + (target * torch.log(target / mean) + (1 - target) * torch.log((1 - target) / (1 - mean))).sum()
    return weight * total


def sigmoid_layers_and_activations(shapes, batch=6):
    torch.manual_seed(0)
    layers = [MatNetLayer((2, 2), shape) for shape in shapes]
    activations = [torch.rand(batch, *shape, dtype=torch.float64).mul(0.9).add(0.05).requires_grad_() for shape in shapes]
    return layers, activations


@pytest.mark.parametrize("shapes", [[(3, 2)], [(3, 2), (1, 1), (2, 4)]])
@pytest.mark.parametrize("target, weight", [(0.05, 1.0), (0.3, 0.25)])
def test_sparsity_value_and_gradient(shapes, target, weight):
    layers, activations = sigmoid_layers_and_activations(shapes)
    penalty = sparsity_penalty(activations, target, weight, layers=layers)
    torch.testing.assert_close(penalty, direct_sparsity(activations, target, weight))

    gradients = torch.autograd.grad(penalty, activations)
    expected_gradients = torch.autograd.grad(direct_sparsity(activations, target, weight), activations)
    for activation, gradient, expected in zip(activations, gradients, expected_gradients):
        torch.testing.assert_close(gradient, expected)
        # paper 6.3 with the 1/N of the mean: ∂/∂A_i = (β/N) (−ρ/ρ̄ + (1−ρ)/(1−ρ̄)), the same for every i
        mean = activation.detach().mean(dim=0)
        closed_form = weight / activation.shape[0] * (-target / mean + (1 - target) / (1 - mean))
        torch.testing.assert_close(gradient, closed_form.expand_as(gradient))


@pytest.mark.parametrize("shapes", [[(3, 2)], [(2, 2), (1, 3)]])
def test_sparsity_gradcheck(shapes):
    layers, activations = sigmoid_layers_and_activations(shapes, batch=4)
    assert torch.autograd.gradcheck(lambda *a: sparsity_penalty(a, 0.05, 0.5, layers=layers), tuple(activations))


class HiddenOutputs(nn.Module):
    """``model.hidden`` as a forward, for torch.func.functional_call."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.hidden(x)


def test_sparsity_gradcheck_through_model_parameters():
    # ∂(β Σ_l R_l)/∂(U, V, B) of every hidden layer, through the fused operator's backward.
    torch.manual_seed(0)
    model = MatNetClassifier((4, 3), [(3, 2), (2, 2)], 2, dtype=torch.float64)
    hidden_outputs = HiddenOutputs(model)
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    names = [name for name, _ in hidden_outputs.named_parameters() if ".matnet_layers." in name]
    values = tuple(hidden_outputs.get_parameter(name).detach().clone().requires_grad_() for name in names)

    def penalty(*values):
        hidden = functional_call(hidden_outputs, dict(zip(names, values)), (x,))
        return sparsity_penalty(hidden, 0.1, 1.0, layers=model.hidden_layers)

    assert len(values) == 6
    assert torch.autograd.gradcheck(penalty, values)


def test_sparsity_is_finite_for_saturated_units():
    layers = [MatNetLayer((2, 2), (1, 2))]
    saturated = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]], requires_grad=True)  # ρ̄ = (0, 1) exactly
    penalty = sparsity_penalty([saturated], 0.05, 1.0, layers=layers)
    (gradient,) = torch.autograd.grad(penalty, saturated)
    assert torch.isfinite(penalty) and penalty > 10  # far from ρ, but not inf
    assert torch.isfinite(gradient).all()


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity"])
def test_sparsity_rejects_activations_outside_zero_one(activation):
    model = MatNetClassifier((4, 3), [(3, 2), (2, 2)], 2, activation=activation)
    x = torch.randn(5, 4, 3)
    with pytest.raises(ValueError, match=rf"sparsity_penalty: layers\[0\] has activation '{activation}'.*needs 'sigmoid'"):
        sparsity_penalty(model.hidden(x), 0.05, 1.0, layers=model.hidden_layers)


def test_sparsity_on_regressor_hidden_layers_only():
    # The regressor's output layer (identity) is not hidden, so it is neither checked nor penalised.
    model = MatNetRegressor((4, 3), [(3, 2)], (2, 2))
    x = torch.randn(5, 4, 3)
    penalty = sparsity_penalty(model.hidden(x), 0.05, 1.0, layers=model.hidden_layers)
    torch.testing.assert_close(penalty, direct_sparsity(model.hidden(x), 0.05, 1.0))
    with pytest.raises(ValueError, match="sparsity_penalty: expected one layer per activation, got 2 layers and 1"):
        sparsity_penalty(model.hidden(x), 0.05, 1.0, layers=model.matnet_layers)


@pytest.mark.parametrize(
    "activations, target, weight, message",
    [
        ([torch.full((4, 3, 2), 0.5)], 0.0, 1.0, r"target \(ρ\) must be strictly between 0 and 1, got 0.0"),
        ([torch.full((4, 3, 2), 0.5)], 1.0, 1.0, r"target \(ρ\) must be strictly between 0 and 1, got 1.0"),
        ([torch.full((4, 3, 2), 0.5)], 0.05, -2.0, r"weight \(β\) must be non-negative, got -2.0"),
        ([torch.full((4, 2, 3), 0.5)], 0.05, 1.0, r"expected activations\[0\] of shape \(N, 3, 2\) with N ≥ 1, got \(4, 2, 3\)"),
        ([torch.full((3, 2), 0.5)], 0.05, 1.0, r"expected activations\[0\] of shape \(N, 3, 2\) with N ≥ 1, got \(3, 2\)"),
        ([torch.full((0, 3, 2), 0.5)], 0.05, 1.0, r"expected activations\[0\] of shape \(N, 3, 2\) with N ≥ 1, got \(0, 3, 2\)"),
        ([], 0.05, 1.0, "activations is empty"),
    ],
)
def test_sparsity_rejects_bad_arguments(activations, target, weight, message):
    layers = [MatNetLayer((2, 2), (3, 2))] if activations else []
    with pytest.raises(ValueError, match=f"sparsity_penalty: {message}"):
        sparsity_penalty(activations, target, weight, layers=layers)


# ---------------------------------------------------------------------------------------------- unit rows


@pytest.mark.parametrize("head", ["vec", "bilinear"])
def test_constrained_model_equals_model_with_normalised_rows(head):
    torch.manual_seed(0)
    model = MatNetClassifier((5, 4), [(3, 3), (2, 3)], 3, head=head)
    expected_model = copy.deepcopy(model)
    with torch.no_grad():
        for layer in expected_model.matnet_layers:
            layer.u /= layer.u.norm(dim=1, keepdim=True)
            layer.v /= layer.v.norm(dim=1, keepdim=True)
    constrain_unit_rows(model)
    x = torch.randn(6, 5, 4)
    torch.testing.assert_close(model(x), expected_model(x))
    assert not any("parametrizations" in name for name, _ in model.head.named_parameters())  # head left free


def test_unit_rows_gradient_is_tangent_to_rows():
    # L does not depend on the rows' lengths, so ∂L/∂ũ_k ⟂ ũ_k for every row.
    torch.manual_seed(0)
    model = MatNetClassifier((5, 4), [(3, 3)], 3)
    constrain_unit_rows(model)
    model(torch.randn(6, 5, 4)).square().sum().backward()
    for name in ("u", "v"):
        original = getattr(model.matnet_layers[0].parametrizations, name).original
        assert original.grad.abs().max() > 1e-3
        torch.testing.assert_close((original.grad * original).sum(dim=1), torch.zeros(original.shape[0]), atol=1e-6, rtol=0)


def test_constrain_is_idempotent_and_remove_keeps_the_function():
    torch.manual_seed(0)
    model = MatNetRegressor((5, 4), [(3, 3)], (2, 2))
    constrain_unit_rows(model)
    constrain_unit_rows(model)
    for layer in model.matnet_layers:
        assert [type(p) for p in layer.parametrizations.u] == [UnitRowNorm]
        assert [type(p) for p in layer.parametrizations.v] == [UnitRowNorm]
    x = torch.randn(6, 5, 4)
    constrained_output = model(x)
    remove_unit_rows(model)
    torch.testing.assert_close(model(x), constrained_output)
    assert sorted(name for name, _ in model.matnet_layers[0].named_parameters()) == ["bias", "u", "v"]
    torch.testing.assert_close(model.matnet_layers[0].u.norm(dim=1), torch.ones(3))


def test_assigning_to_a_constrained_matrix_stores_its_normalised_rows():
    layer = MatNetLayer((2, 2), (2, 2))
    constrain_unit_rows(layer)
    layer.u = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    torch.testing.assert_close(layer.u, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))


@pytest.mark.parametrize("function", [constrain_unit_rows, remove_unit_rows])
def test_unit_rows_need_a_matnet_layer(function):
    with pytest.raises(ValueError, match=f"{function.__name__}: found no MatNetLayer in model \\(a Linear\\)"):
        function(nn.Linear(3, 2))
