"""MultiMatNetLayer: parameters, initialisation and argument errors (the operator underneath,
matnet_torch.multi_bilinear, is tested in test_multi_bilinear.py)."""
import pytest
import torch

from matnet_torch import reference
from matnet_torch.nn import MatNetLayer, MultiMatNetLayer

# ---------------------------------------------------------------- MultiMatNetLayer
def test_layer_parameters_forward_and_repr():
    layer = MultiMatNetLayer([(15, 15), (4, 6)], (10, 10), activation="sigmoid").double()
    assert [tuple(u.shape) for u in layer.us] == [(10, 15), (10, 4)]
    assert [tuple(v.shape) for v in layer.vs] == [(10, 15), (10, 6)] and layer.bias.shape == (10, 10)
    xs = [torch.randn(3, 15, 15, dtype=torch.float64), torch.randn(3, 4, 6, dtype=torch.float64)]
    torch.testing.assert_close(layer(xs), reference.multi_bilinear(xs, list(layer.us), list(layer.vs), layer.bias, "sigmoid"))
    assert MultiMatNetLayer([(2, 2)], (1, 1), bias=False).bias is None
    assert repr(layer) == (
        "MultiMatNetLayer(\n  in_shapes=[(15, 15), (4, 6)], out_shape=(10, 10), activation='sigmoid', bias=True\n"
        "  (us): ParameterList(\n      (0): Parameter containing: [torch.float64 of size 10x15]\n"
        "      (1): Parameter containing: [torch.float64 of size 10x4]\n  )\n"
        "  (vs): ParameterList(\n      (0): Parameter containing: [torch.float64 of size 10x15]\n"
        "      (1): Parameter containing: [torch.float64 of size 10x6]\n  )\n)"
    )


def test_one_input_initialises_like_matnet_layer():
    torch.manual_seed(3)
    multi = MultiMatNetLayer([(6, 5)], (4, 3), activation="tanh")
    torch.manual_seed(3)
    single = MatNetLayer((6, 5), (4, 3), activation="tanh")
    torch.testing.assert_close(multi.us[0], single.u)
    torch.testing.assert_close(multi.vs[0], single.v)


def test_initialisation_preserves_the_variance_of_the_sum():
    torch.manual_seed(0)
    layer = MultiMatNetLayer([(15, 15)] * 5, (10, 10), activation="identity", bias=False)
    xs = [torch.randn(2000, 15, 15) for _ in range(5)]
    with torch.no_grad():
        variance = layer(xs).var().item()
    # One draw of the weights: Var(z) is 1 in expectation over them; the draw varies it by tens of %.
    assert 0.5 < variance < 1.6, variance


@pytest.mark.parametrize(
    "arguments, message",
    [
        (([], (2, 2)), r"MultiMatNetLayer: in_shapes must name at least one input shape"),
        (([(2, 2), (0, 3)], (2, 2)), r"MultiMatNetLayer: in_shapes\[1\] must be two positive sizes"),
        (([(2, 2)], (2,)), r"MultiMatNetLayer: out_shape must be two positive sizes"),
        (([(2, 2)], (2, 2), "swish"), r"MultiMatNetLayer: unknown activation 'swish'"),
    ],
)
def test_layer_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        MultiMatNetLayer(*arguments)


def test_layer_rejects_a_wrong_number_of_inputs():
    with pytest.raises(ValueError, match=r"MultiMatNetLayer: expected 2 inputs, got 1"):
        MultiMatNetLayer([(2, 2), (3, 3)], (1, 1))([torch.zeros(1, 2, 2)])
