"""MatNetLayer: parameters, initialisation, state_dict, dtype moves, training steps, errors."""
import io

import pytest
import torch

import matnet_torch
from matnet_torch import reference
from matnet_torch.nn import MatNetLayer


def test_parameters_and_repr():
    layer = MatNetLayer((28, 28), (20, 20))
    assert layer.u.shape == (20, 28) and layer.v.shape == (20, 28) and layer.bias.shape == (20, 20)
    assert sum(p.numel() for p in layer.parameters()) == 1520
    assert MatNetLayer((28, 28), (20, 20), bias=False).bias is None
    assert repr(layer) == "MatNetLayer(in_shape=(28, 28), out_shape=(20, 20), activation='sigmoid', bias=True)"


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_forward_is_the_operator(activation):
    layer = MatNetLayer((5, 4), (3, 2), activation=activation).double()
    x = torch.randn(6, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference.bilinear(x, layer.u, layer.v, layer.bias, activation))


@pytest.mark.parametrize("activation,lower,upper", [("tanh", 0.3, 1.5), ("relu", 0.3, 3.0), ("identity", 0.5, 2.0)])
def test_initialisation_keeps_the_scale_through_a_deep_stack(activation, lower, upper):
    torch.manual_seed(0)
    stack = torch.nn.Sequential(*[MatNetLayer((16, 16), (16, 16), activation=activation) for _ in range(12)])
    x = torch.randn(512, 16, 16)
    with torch.no_grad():
        scale = stack(x).pow(2).mean().sqrt().item()
    assert lower < scale < upper, scale


def test_reset_parameters_reinitialises():
    torch.manual_seed(0)
    layer = MatNetLayer((8, 8), (4, 4))
    with torch.no_grad():
        layer.u.fill_(3.0)
        layer.bias.fill_(1.0)
    layer.reset_parameters()
    assert layer.u.abs().max() < 3.0 and layer.bias.abs().max() == 0


def test_state_dict_round_trip():
    layer = MatNetLayer((6, 5), (4, 3), activation="tanh")
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    restored = MatNetLayer((6, 5), (4, 3), activation="tanh")
    restored.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 6, 5)
    torch.testing.assert_close(restored(x), layer(x))


def test_double_moves_parameters_and_computes_in_float64():
    layer = MatNetLayer((6, 5), (4, 3)).double()
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    assert layer(torch.randn(2, 6, 5, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_optimizer_steps_reduce_a_loss(optimizer):
    torch.manual_seed(0)
    layer = MatNetLayer((6, 5), (4, 3), activation="sigmoid")
    x = torch.randn(64, 6, 5)
    with torch.no_grad():  # a learnable target: another layer's outputs
        target = MatNetLayer((6, 5), (4, 3), activation="sigmoid")(x)
    make = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=0.05),
        "lbfgs": lambda p: torch.optim.LBFGS(p, max_iter=5, line_search_fn="strong_wolfe"),
    }
    opt = make[optimizer](layer.parameters())

    def closure():
        opt.zero_grad()
        loss = (layer(x) - target).pow(2).sum((1, 2)).mean()  # mean over samples of ‖Y − T‖²_F
        loss.backward()
        return loss

    first = closure().item()
    for _ in range(10):
        opt.step(closure)
    assert closure().item() < 0.8 * first


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(in_shape=(28,), out_shape=(20, 20)), r"MatNetLayer: in_shape must be two positive sizes \(rows, columns\), got \(28,\)"),
        (dict(in_shape=(28, 28), out_shape=(0, 20)), r"MatNetLayer: out_shape must be two positive sizes .* got \(0, 20\)"),
        (dict(in_shape=(28, 28), out_shape=(20, 20), activation="gelu"), r"MatNetLayer: unknown activation 'gelu'"),
    ],
)
def test_bad_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MatNetLayer(**kwargs)
