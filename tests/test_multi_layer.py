"""matnet_torch.multi_bilinear and MultiMatNetLayer: σ(Σ_j U_j X^j V_jᵀ + B) against the pure-PyTorch
reference over D × shapes × activation × bias × dtype, gradcheck, D = 1 against bilinear, errors."""
import math

import pytest
import torch

import matnet_torch
from matnet_torch import reference
from matnet_torch.nn import MatNetLayer, MultiMatNetLayer
from conftest import TOLERANCES

# (leading dimensions, [(p_j, q_j) for each input], (m, n)): one input, the super-resolution shape,
# mixed sizes, an empty batch, several leading dimensions, no batch dimension, 1×1 matrices.
CASES = [
    ((6,), [(5, 4)], (3, 2)),
    ((7,), [(15, 15)] * 5, (10, 10)),
    ((4,), [(5, 4), (2, 7), (3, 3)], (3, 6)),
    ((0,), [(4, 3), (2, 5)], (2, 2)),
    ((2, 3), [(4, 5), (3, 3)], (2, 4)),
    ((), [(3, 4), (5, 2)], (2, 3)),
    ((3,), [(1, 1), (1, 1)], (1, 1)),
]
CASE_IDS = ["one-input", "superres", "mixed", "empty-batch", "leading-dims", "no-batch", "1x1"]


def make_inputs(leading, in_shapes, out_shape, dtype, bias=True, seed=0):
    generator = torch.Generator().manual_seed(seed)
    m, n = out_shape

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(dtype)

    xs = [rand(*leading, p, q) for p, q in in_shapes]
    us = [rand(m, p, scale=1 / math.sqrt(p)) for p, _ in in_shapes]
    vs = [rand(n, q, scale=1 / math.sqrt(q * len(in_shapes))) for _, q in in_shapes]
    return xs, us, vs, rand(m, n) if bias else None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("leading, in_shapes, out_shape", CASES, ids=CASE_IDS)
def test_forward_and_gradients_match_reference(dtype, activation, bias, leading, in_shapes, out_shape):
    xs, us, vs, b = make_inputs(leading, in_shapes, out_shape, dtype, bias)
    leaves = [t.clone().requires_grad_() for t in xs + us + vs + ([b] if bias else [])]
    d = len(xs)
    y = matnet_torch.multi_bilinear(leaves[:d], leaves[d : 2 * d], leaves[2 * d : 3 * d], leaves[3 * d] if bias else None, activation)
    assert y.shape == leading + out_shape and y.dtype == dtype

    exact = [t.detach().double().requires_grad_() for t in leaves]
    expected = reference.multi_bilinear(exact[:d], exact[d : 2 * d], exact[2 * d : 3 * d], exact[3 * d] if bias else None, activation)
    torch.testing.assert_close(y.double(), expected, **TOLERANCES[dtype])

    grad_y = torch.randn(y.shape, dtype=torch.float64)
    grads = torch.autograd.grad(y, leaves, grad_y.to(dtype))
    expected_grads = torch.autograd.grad(expected, exact, grad_y)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad.double(), expected_grad, **TOLERANCES[dtype])


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("leading, in_shapes, out_shape", [CASES[2], CASES[4]], ids=["mixed", "leading-dims"])
def test_gradcheck_float64(activation, leading, in_shapes, out_shape):
    xs, us, vs, b = make_inputs(leading, in_shapes, out_shape, torch.float64)
    d = len(xs)
    leaves = [t.requires_grad_() for t in xs + us + vs + [b]]

    def function(*tensors):
        return matnet_torch.multi_bilinear(tensors[:d], tensors[d : 2 * d], tensors[2 * d : 3 * d], tensors[3 * d], activation)

    assert torch.autograd.gradcheck(function, leaves)


def test_one_input_is_bilinear_exactly():
    xs, us, vs, b = make_inputs((9,), [(6, 5)], (4, 3), torch.float32)
    for activation in matnet_torch.ACTIVATIONS:
        torch.testing.assert_close(
            matnet_torch.multi_bilinear(xs, us, vs, b, activation),
            matnet_torch.bilinear(xs[0], us[0], vs[0], b, activation),
            rtol=0,
            atol=0,
        )


def test_non_contiguous_inputs():
    xs, us, vs, b = make_inputs((5,), [(4, 3), (3, 6)], (2, 5), torch.float64)
    transposed = [x.mT.contiguous().mT for x in xs]
    torch.testing.assert_close(
        matnet_torch.multi_bilinear(transposed, [u.mT.contiguous().mT for u in us], vs, b, "tanh"),
        reference.multi_bilinear(xs, us, vs, b, "tanh"),
    )


def _inputs_with(change):
    xs, us, vs, b = make_inputs((4,), [(5, 4), (3, 3), (15, 2)], (3, 2), torch.float32)
    arguments = {"xs": xs, "us": us, "vs": vs, "bias": b}
    change(arguments)
    return arguments


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(xs=[], us=[], vs=[]), r"expected non-empty xs, us and vs of one length, got 0, 0 and 0"),
        (lambda a: a.update(vs=a["vs"][:2]), r"expected non-empty xs, us and vs of one length, got 3, 3 and 2"),
        (lambda a: a["xs"].__setitem__(1, torch.zeros(5, 3, 3)), r"xs\[1\] has leading dimensions \(5,\), xs\[0\] has \(4,\)"),
        (lambda a: a["us"].__setitem__(2, torch.zeros(3, 14)), r"us\[2\]\.size\(1\) \(14\) must equal xs\[2\]\.size\(-2\) \(15\)"),
        (lambda a: a["vs"].__setitem__(0, torch.zeros(2, 5)), r"vs\[0\]\.size\(1\) \(5\) must equal xs\[0\]\.size\(-1\) \(4\)"),
        (lambda a: a["us"].__setitem__(1, torch.zeros(4, 3)), r"us\[1\]\.size\(0\) and vs\[1\]\.size\(0\) \(4, 2\) must equal"),
        (lambda a: a["xs"].__setitem__(0, torch.zeros(5)), r"expected xs\[0\] \(\.\.\., p, q\)"),
        (lambda a: a.update(bias=torch.zeros(2, 3)), r"expected bias of shape \(3, 2\), got \(2, 3\)"),
        (lambda a: a.update(activation="softplus"), r"unknown activation 'softplus'"),
    ],
    ids=["empty", "lengths", "leading", "u-rows", "v-rows", "out-shape", "x-dims", "bias", "activation"],
)
def test_bad_input_raises_a_clear_error(change, message):
    with pytest.raises(ValueError, match=r"matnet::multi_bilinear: " + message):
        matnet_torch.multi_bilinear(**_inputs_with(change))


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
