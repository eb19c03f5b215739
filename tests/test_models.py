"""MatNetClassifier, MatNetRegressor and the softmax heads: shapes, parameter counts, agreement with
plain-torch formulas, the regression loss, and training with every optimizer, with and without the
unit-norm constraint of matnet_torch.regularizers."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from matnet_torch import ACTIVATIONS, reference
from matnet_torch.losses import matrix_regression_loss
from matnet_torch.nn import BilinearSoftmaxHead, MatNetClassifier, MatNetRegressor, VectorizedSoftmaxHead
from matnet_torch.regularizers import constrain_unit_rows

HEADS = ("vec", "bilinear")


def parameter_count(module):
    return sum(parameter.numel() for parameter in module.parameters())


# ---------------------------------------------------------------------------------------------- heads


def naive_bilinear_head(head, x):
    """s_ik = u_k X_i v_kᵀ + b_k, one sample and one class at a time."""
    batch_shape = x.shape[:-2]
    flat = x.reshape(-1, *x.shape[-2:])
    logits = torch.empty(flat.shape[0], head.num_classes, dtype=x.dtype)
    for i, k in itertools.product(range(flat.shape[0]), range(head.num_classes)):
        logits[i, k] = head.u[k] @ flat[i] @ head.v[k] + head.bias[k]
    return logits.reshape(*batch_shape, head.num_classes)


HEAD_CASES = [  # (in_shape, num_classes, batch_shape)
    ((4, 3), 5, (7,)),
    ((4, 3), 5, (2, 3)),
    ((4, 3), 5, ()),
    ((4, 3), 5, (0,)),
    ((1, 1), 1, (3,)),
    ((2, 6), 2, (4,)),
]


@pytest.mark.parametrize("in_shape, num_classes, batch_shape", HEAD_CASES)
def test_bilinear_head_matches_naive_loop(in_shape, num_classes, batch_shape):
    torch.manual_seed(0)
    head = BilinearSoftmaxHead(in_shape, num_classes, dtype=torch.float64)
    torch.nn.init.normal_(head.bias)  # a non-zero bias, so it is checked too
    x = torch.randn(*batch_shape, *in_shape, dtype=torch.float64)
    logits = head(x)
    assert logits.shape == (*batch_shape, num_classes)
    torch.testing.assert_close(logits, naive_bilinear_head(head, x))


@pytest.mark.parametrize("in_shape, num_classes, batch_shape", HEAD_CASES)
def test_vectorized_head_matches_naive_sum(in_shape, num_classes, batch_shape):
    torch.manual_seed(0)
    head = VectorizedSoftmaxHead(in_shape, num_classes, dtype=torch.float64)
    x = torch.randn(*batch_shape, *in_shape, dtype=torch.float64)
    p, q = in_shape
    # s_k = Σ_rc W[k, r·q + c] X_rc + b_k: vec() flattens row by row.
    weight = head.weight.reshape(num_classes, p, q)
    expected = torch.einsum("krc,...rc->...k", weight, x) + head.bias
    torch.testing.assert_close(head(x), expected)


@pytest.mark.parametrize("head_class", [VectorizedSoftmaxHead, BilinearSoftmaxHead])
def test_head_gradcheck(head_class):
    torch.manual_seed(0)
    head = head_class((3, 2), 4, dtype=torch.float64)
    parameters = {name: parameter.detach().clone().requires_grad_() for name, parameter in head.named_parameters()}
    x = torch.randn(5, 3, 2, dtype=torch.float64, requires_grad=True)

    def logits(x, *values):
        return functional_call(head, dict(zip(parameters, values)), (x,))

    assert torch.autograd.gradcheck(logits, (x, *parameters.values()))


@pytest.mark.parametrize(
    "head_class, expected_names_and_shapes",
    [
        (VectorizedSoftmaxHead, {"weight": (10, 256), "bias": (10,)}),  # 2570, the paper's head
        (BilinearSoftmaxHead, {"u": (10, 16), "v": (10, 16), "bias": (10,)}),  # 330
    ],
)
def test_head_parameters(head_class, expected_names_and_shapes):
    head = head_class((16, 16), 10)
    assert {name: tuple(p.shape) for name, p in head.named_parameters()} == expected_names_and_shapes


def test_bilinear_head_init_scale():
    # U ~ N(0, 1/p), V ~ N(0, 1/q): E[s²] = mean of X², here 1 for X of ones.
    torch.manual_seed(0)
    logits = torch.cat([BilinearSoftmaxHead((16, 12), 100)(torch.ones(1, 16, 12)) for _ in range(20)])
    assert 0.8 < logits.square().mean().item() < 1.2


@pytest.mark.parametrize("head_class", [VectorizedSoftmaxHead, BilinearSoftmaxHead])
@pytest.mark.parametrize(
    "in_shape, num_classes, message",
    [((4,), 3, "in_shape"), ((4, 0), 3, "in_shape"), ((4, 3), 0, "num_classes")],
)
def test_head_rejects_bad_arguments(head_class, in_shape, num_classes, message):
    with pytest.raises(ValueError, match=f"{head_class.__name__}: {message}"):
        head_class(in_shape, num_classes)


# ---------------------------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, 1520 + 896 + 2570),  # the paper's MNIST net: 28×28 → 20×20 → 16×16 → 10, vec head = 4986
        ({"head": "bilinear"}, 1520 + 896 + 330),  # head 10·16 + 10·16 + 10
        ({"in_shape": (5, 4), "hidden_shapes": [], "num_classes": 3}, 5 * 4 * 3 + 3),
        ({"in_shape": (5, 4), "hidden_shapes": [], "num_classes": 3, "head": "bilinear"}, 3 * 5 + 3 * 4 + 3),
        ({"in_shape": (1, 1), "hidden_shapes": [(1, 1)], "num_classes": 2}, 3 + 2 + 2),
        ({"in_shape": (6, 5), "hidden_shapes": [(4, 3), (2, 2), (3, 1)], "num_classes": 4},
         (24 + 15 + 12) + (8 + 6 + 4) + (6 + 2 + 3) + (3 * 4 + 4)),
    ],
)
def test_classifier_parameter_count(kwargs, expected):
    model = MatNetClassifier(**kwargs)
    assert parameter_count(model) == expected
    assert f"parameters={expected}" in repr(model)


@pytest.mark.parametrize(
    "in_shape, hidden_shapes, out_shape, expected",
    [
        ((6, 5), [(4, 3)], (2, 2), (24 + 15 + 12) + (8 + 6 + 4)),
        ((3, 3), [], (2, 4), 6 + 12 + 8),
        ((15, 15), [(10, 10)], (15, 15), (150 + 150 + 100) + (150 + 150 + 225)),
    ],
)
def test_regressor_parameter_count(in_shape, hidden_shapes, out_shape, expected):
    assert parameter_count(MatNetRegressor(in_shape, hidden_shapes, out_shape)) == expected


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("hidden_shapes", [[], [(4, 3)], [(4, 3), (2, 5)]])
@pytest.mark.parametrize("input_shape", [(7, 6, 5), (7, 1, 6, 5), (1, 6, 5), (0, 6, 5)])
def test_classifier_shapes(head, hidden_shapes, input_shape):
    model = MatNetClassifier((6, 5), hidden_shapes, 3, head=head)
    x = torch.rand(input_shape)
    logits, hidden = model.forward_with_hidden(x)
    n = input_shape[0]
    assert logits.shape == (n, 3)
    assert [tuple(h.shape) for h in hidden] == [(n, *shape) for shape in hidden_shapes]
    assert [tuple(h.shape) for h in model.hidden(x)] == [(n, *shape) for shape in hidden_shapes]
    torch.testing.assert_close(model(x), logits)


@pytest.mark.parametrize("hidden_shapes", [[], [(4, 3)], [(4, 3), (2, 5)]])
@pytest.mark.parametrize("input_shape", [(7, 6, 5), (7, 1, 6, 5), (0, 6, 5)])
def test_regressor_shapes(hidden_shapes, input_shape):
    model = MatNetRegressor((6, 5), hidden_shapes, (3, 2))
    x = torch.rand(input_shape)
    prediction, hidden = model.forward_with_hidden(x)
    n = input_shape[0]
    assert prediction.shape == (n, 3, 2)
    assert [tuple(h.shape) for h in model.hidden(x)] == [(n, *shape) for shape in hidden_shapes]
    assert list(model.hidden_layers) == list(model.matnet_layers)[:-1]


def reference_forward(layers, x):
    for layer in layers:
        x = reference.bilinear(x, layer.u, layer.v, layer.bias, layer.activation)
    return x


def reference_head(head, x):
    if isinstance(head, VectorizedSoftmaxHead):
        return x.flatten(-2) @ head.weight.T + head.bias
    return torch.einsum("kr,nrc,kc->nk", head.u, x, head.v) + head.bias


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("head", HEADS)
def test_classifier_matches_reference_values_and_gradients(activation, head):
    torch.manual_seed(0)
    model = MatNetClassifier((6, 5), [(4, 3), (3, 3)], 4, activation=activation, head=head, dtype=torch.float64)
    for layer in model.matnet_layers:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(8, 6, 5, dtype=torch.float64)
    labels = torch.arange(8) % 4

    loss = F.cross_entropy(model(x), labels)
    gradients = torch.autograd.grad(loss, list(model.parameters()))
    expected_loss = F.cross_entropy(reference_head(model.head, reference_forward(model.matnet_layers, x)), labels)
    expected_gradients = torch.autograd.grad(expected_loss, list(model.parameters()))

    torch.testing.assert_close(loss, expected_loss)
    for gradient, expected in zip(gradients, expected_gradients):
        torch.testing.assert_close(gradient, expected)
    assert all(layer.activation == activation for layer in model.matnet_layers)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("output_activation", ACTIVATIONS)
def test_regressor_matches_reference(activation, output_activation):
    torch.manual_seed(0)
    model = MatNetRegressor((6, 5), [(4, 3)], (3, 2), activation, output_activation, dtype=torch.float64)
    x = torch.randn(8, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(model(x), reference_forward(model.matnet_layers, x))
    assert [layer.activation for layer in model.matnet_layers] == [activation, output_activation]


@pytest.mark.parametrize(
    "make_model, message",
    [
        (lambda: MatNetClassifier(head="conv"), r"MatNetClassifier: unknown head 'conv'; expected one of vec, bilinear"),
        (lambda: MatNetClassifier((4, 4), [], 3, activation="gelu"), r"MatNetClassifier: unknown activation 'gelu'"),
        (lambda: MatNetClassifier((4, 4), [(2,)], 3), r"MatNetClassifier: hidden_shapes entry .* got \(2,\)"),
        (lambda: MatNetClassifier((4, 4), [], 0), r"MatNetClassifier: num_classes .* got 0"),
        (lambda: MatNetRegressor((4, 4), [], (2, 2), output_activation="softmax"),
         r"MatNetRegressor: unknown output_activation 'softmax'"),
        (lambda: MatNetRegressor((4, 4), [], (2, 0)), r"MatNetRegressor: out_shape .* got \(2, 0\)"),
    ],
)
def test_models_reject_bad_arguments(make_model, message):
    with pytest.raises(ValueError, match=message):
        make_model()


@pytest.mark.parametrize("model_class", [MatNetClassifier, MatNetRegressor])
@pytest.mark.parametrize("input_shape", [(2, 3, 6, 5), (2, 5, 6), (6, 5), (2, 1, 1, 6, 5)])
def test_models_reject_bad_input_shapes(model_class, input_shape):
    model = MatNetClassifier((6, 5), [(2, 2)], 3) if model_class is MatNetClassifier else MatNetRegressor((6, 5), [], (2, 2))
    with pytest.raises(ValueError, match=rf"{model_class.__name__}: expected x of shape \(N, 6, 5\) or \(N, 1, 6, 5\)"):
        model(torch.rand(input_shape))


def test_models_repr_names_the_architecture():
    text = repr(MatNetClassifier(head="bilinear"))
    assert "hidden_shapes=[(20, 20), (16, 16)]" in text and "head='bilinear'" in text
    assert "BilinearSoftmaxHead(in_shape=(16, 16), num_classes=10)" in text
    text = repr(MatNetRegressor((6, 5), [(4, 3)], (2, 2), output_activation="sigmoid"))
    assert "out_shape=(2, 2)" in text and "output_activation='sigmoid'" in text


# ---------------------------------------------------------------------------------------------- loss


def test_matrix_regression_loss_by_hand():
    prediction = torch.zeros(2, 1, 2)
    target = torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]])
    # ½‖·‖²_F per sample: ½·(1 + 4) = 2.5 and ½·9 = 4.5; mean over N = 2 samples: 3.5.
    torch.testing.assert_close(matrix_regression_loss(prediction, target), torch.tensor(3.5))
    # a share of a global batch of 5 samples: (2.5 + 4.5) / 5
    torch.testing.assert_close(matrix_regression_loss(prediction, target, batch_size=5), torch.tensor(1.4))
    with pytest.raises(ValueError, match="matrix_regression_loss: batch_size must be a positive integer, got 0"):
        matrix_regression_loss(prediction, target, batch_size=0)


@pytest.mark.parametrize("prediction_shape, target_shape", [((2, 3, 2), (2, 2, 3)), ((2, 3, 2), (3, 2)), ((3,), (3,))])
def test_matrix_regression_loss_rejects_shape_mismatch(prediction_shape, target_shape):
    with pytest.raises(ValueError, match="matrix_regression_loss: expected prediction and target of the same shape"):
        matrix_regression_loss(torch.zeros(prediction_shape), torch.zeros(target_shape))


# ---------------------------------------------------------------------------------------------- training


def classification_problem():
    """64 random 6×5 matrices labelled by which of three row bands has the largest sum."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, 5, generator=generator)
    labels = torch.stack([x[:, 2 * k : 2 * k + 2].sum(dim=(1, 2)) for k in range(3)], dim=1).argmax(dim=1)
    torch.manual_seed(1)
    model = MatNetClassifier((6, 5), [(4, 4)], 3)
    return model, lambda: F.cross_entropy(model(x), labels)


def regression_problem():
    """Targets made by a random teacher MatNetRegressor of the student's architecture."""
    x = torch.randn(64, 6, 5, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(100)
    with torch.no_grad():
        target = MatNetRegressor((6, 5), [(4, 4)], (3, 2))(x)
    torch.manual_seed(1)
    model = MatNetRegressor((6, 5), [(4, 4)], (3, 2))
    return model, lambda: matrix_regression_loss(model(x), target)


PROBLEMS = {"classifier": classification_problem, "regressor": regression_problem}
OPTIMIZERS = {  # (problem, optimizer) -> a factory over the parameters
    "sgd": lambda parameters, problem: torch.optim.SGD(
        parameters, lr={"classifier": 0.3, "regressor": 0.03}[problem], momentum=0.9
    ),
    "adam": lambda parameters, problem: torch.optim.Adam(parameters, lr=0.05),
    "lbfgs": lambda parameters, problem: torch.optim.LBFGS(parameters, max_iter=5, line_search_fn="strong_wolfe"),
}


def make_optimizer(optimizer_name, problem, model):
    return OPTIMIZERS[optimizer_name](model.parameters(), problem)


def train(optimizer, loss_function, steps):
    """(loss before, loss after) ``steps`` optimizer steps, each through a closure (LBFGS needs one)."""

    def closure():
        optimizer.zero_grad()
        loss = loss_function()
        loss.backward()
        return loss

    with torch.no_grad():
        initial_loss = loss_function().item()
    for _ in range(steps):
        optimizer.step(closure)
    with torch.no_grad():
        final_loss = loss_function().item()
    return initial_loss, final_loss


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
@pytest.mark.parametrize("constrained", [False, True], ids=["free", "unit_rows"])
def test_training_reduces_loss(problem, optimizer_name, constrained):
    model, loss_function = PROBLEMS[problem]()
    if constrained:
        constrain_unit_rows(model)
    initial_loss, final_loss = train(make_optimizer(optimizer_name, problem, model), loss_function, steps=20)
    assert final_loss < 0.8 * initial_loss, (initial_loss, final_loss)


@pytest.mark.parametrize("optimizer_name", OPTIMIZERS)
def test_unit_rows_stay_unit_under_training(optimizer_name):
    model, loss_function = classification_problem()
    constrain_unit_rows(model)
    unnormalized_before = [layer.parametrizations.u.original.detach().clone() for layer in model.matnet_layers]
    train(make_optimizer(optimizer_name, "classifier", model), loss_function, steps=5)
    for layer, before in zip(model.matnet_layers, unnormalized_before):
        assert not torch.equal(layer.parametrizations.u.original, before)  # the optimizer moved Ũ
        for matrix in (layer.u, layer.v):
            torch.testing.assert_close(matrix.norm(dim=1), torch.ones(matrix.shape[0]), atol=1e-5, rtol=0)
