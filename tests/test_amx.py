"""The CPU variant `amx`: bfloat16 forward and backward on AMX tiles (csrc/cpu/amx/bilinear_amx.h), on
problems where the tiles pay off (each split float32 entry feeds enough multiply-adds) or the lane
kernels cannot take them. Float32 arithmetic and one rounding, against the float64 reference; the
same special values as the lane kernels; the same bits for any thread count. Skipped where the CPU
has no AMX-BF16 (or the OS does not grant the tile registers)."""
import pytest
import torch

import matnet_torch
from matnet_torch import reference
from conftest import (CPU_CAPABILITIES, assert_float32_arithmetic_rounded_once, bilinear_tolerances, make_inputs,
                      multi_bilinear_tolerances, multi_gradients_from_saved_output)

pytestmark = pytest.mark.skipif("amx" not in CPU_CAPABILITIES, reason="no AMX-BF16 on this CPU (or not granted by the OS)")

# Shapes the tiles take, each for a reason: odd and unpadded sizes, several slots of samples, both
# passes (x (150, 40, 33) → (17, 35)); the forward only, the backward staying on the lane kernels
# (the paper's first layer); one row pair with an empty odd row (p = 3); a 64 × 64 layer; matrices
# too large for the lane kernels' scratch (otherwise the GEMM path).
SHAPES = [((150, 40, 33), (17, 35)), ((70, 28, 28), (20, 20)), ((5, 3, 47), (3, 2)), ((9, 64, 64), (64, 64)),
          ((2, 260, 250), (6, 5))]
SHAPE_IDS = ["odd-sizes", "mnist", "odd-p", "64x64", "large"]
MASKS = {"all": [True] * 4, "no-dx": [False, True, True, True]}


@pytest.fixture(autouse=True)
def amx_kernels():
    previous = matnet_torch.cpu_capability()
    matnet_torch.set_cpu_capability("amx")
    yield
    matnet_torch.set_cpu_capability(previous)


def bfloat16_inputs(x_shape, out_shape, bias=True, seed=0):
    return tuple(t.float().bfloat16() if t is not None else None
                 for t in make_inputs(x_shape, out_shape, torch.float64, "cpu", bias=bias, seed=seed))


def forward_backward(inputs, activation, mask, seed=2):
    y = torch.ops.matnet.bilinear(*inputs, activation)
    grad_y = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed)).bfloat16()
    grads = torch.ops.matnet.bilinear_backward(grad_y, *inputs[:3], y, activation, mask[:3] + [inputs[3] is not None])
    return y, grad_y, grads


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mask", MASKS.values(), ids=MASKS.keys())
@pytest.mark.parametrize("x_shape,out_shape", SHAPES, ids=SHAPE_IDS)
def test_float32_arithmetic_rounded_once(x_shape, out_shape, mask, bias, activation):
    inputs = bfloat16_inputs(x_shape, out_shape, bias)
    y, grad_y, grads = forward_backward(inputs, activation, mask)
    assert y.dtype == torch.bfloat16 and all(g is None or g.dtype == torch.bfloat16 for g in grads)
    assert (grads[0] is None) == (not mask[0])
    assert_float32_arithmetic_rounded_once(inputs, activation, y, grad_y, grads)


def test_the_tiles_ran():
    """The lane kernels sum in another order: on the same inputs, some of the many entries of y and
    dX round differently. (Were the tiles never chosen, every bit would be the lane kernels'.)"""
    inputs = bfloat16_inputs((150, 40, 33), (17, 35))
    y, _, (grad_x, *_) = forward_backward(inputs, "identity", MASKS["all"])
    matnet_torch.set_cpu_capability("avx512")
    lane_y, _, (lane_grad_x, *_) = forward_backward(inputs, "identity", MASKS["all"])
    assert not torch.equal(y, lane_y) and not torch.equal(grad_x, lane_grad_x)


def test_two_inputs():
    generator = torch.Generator().manual_seed(0)
    (m, n), sizes = (36, 30), [(33, 40), (48, 31)]
    rand = lambda *s, scale=1.0: (torch.randn(*s, generator=generator, dtype=torch.float64) * scale).float().bfloat16()  # noqa: E731
    xs = [rand(70, p, q) for p, q in sizes]
    us = [rand(m, p, scale=p**-0.5) for p, _ in sizes]
    vs = [rand(n, q, scale=q**-0.5) for _, q in sizes]
    bias = rand(m, n)
    y = torch.ops.matnet.multi_bilinear(xs, us, vs, bias, "tanh")
    grad_y = rand(*y.shape)
    grads = torch.ops.matnet.multi_bilinear_backward(grad_y, xs, us, vs, y, "tanh", [True] * 7)
    y_tolerance, *grad_tolerances = multi_bilinear_tolerances(torch.bfloat16, xs, us, vs, grad_y)
    double = lambda ts: [t.double() for t in ts]  # noqa: E731
    expected_y = reference.multi_bilinear(double(xs), double(us), double(vs), bias.double(), "tanh")
    torch.testing.assert_close(y.double(), expected_y, **y_tolerance)
    expected_grads = multi_gradients_from_saved_output(xs, us, vs, bias, "tanh", grad_y, y)
    for grad, expected, tolerance in zip(grads, expected_grads, grad_tolerances):
        torch.testing.assert_close(grad.double(), expected, **tolerance)


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_special_values_as_the_lane_kernels(activation):
    """NaN, ±inf and subnormals in x (samples with an inf or NaN take float32 loops for dU and dV,
    bilinear_amx.cpp): NaN and ±inf exactly where the lane kernels have them (both associate the
    products alike; the float64 reference does not, and inf − inf is NaN in one association where the
    other has ±inf), the other entries within float32 arithmetic and one rounding of theirs: twice the
    rounded-once tolerance, one for each result's distance from the exact float32-arithmetic value."""
    x, u, v, bias = bfloat16_inputs((150, 40, 33), (17, 35))
    x[0, 0, 0], x[3, 1, 1], x[5, 2, 2], x[9, 0, 0] = float("nan"), float("inf"), -float("inf"), 1e-40
    x[11, 4] = float("inf")
    inputs = (x, u, v, bias)
    y, grad_y, grads = forward_backward(inputs, activation, MASKS["all"])
    matnet_torch.set_cpu_capability("avx512")
    lane_y, _, lane_grads = forward_backward(inputs, activation, MASKS["all"])
    tolerances = bilinear_tolerances(torch.bfloat16, x.nan_to_num(0, 0, 0), u, v, grad_y)
    for ours, theirs, tolerance in zip([y, *grads], [lane_y, *lane_grads], tolerances):
        assert torch.equal(ours.isnan(), theirs.isnan()) and torch.equal(ours.isinf(), theirs.isinf())
        twice = {name: 2 * value for name, value in tolerance.items()}
        torch.testing.assert_close(ours.double(), theirs.double(), equal_nan=True, **twice)
    assert y.isnan().any() and grads[2].isnan().any()


def test_the_same_bits_for_any_thread_count():
    """dU, dV, dB are summed in fixed slots of samples (as the lane kernels sum them)."""
    inputs = bfloat16_inputs((1000, 40, 33), (17, 35))
    previous = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            y, _, grads = forward_backward(inputs, "sigmoid", MASKS["all"])
            results.append([y, *grads])
    finally:
        torch.set_num_threads(previous)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


def test_one_gradient_for_every_sample():
    """The gradient of y.sum(): one matrix expanded over the batch (stride 0), not copied."""
    inputs = [t.requires_grad_() for t in bfloat16_inputs((150, 40, 33), (17, 35))]
    matnet_torch.bilinear(*inputs, activation="sigmoid").sum().backward()
    grads = [t.grad for t in inputs]
    detached = tuple(t.detach() for t in inputs)
    y = torch.ops.matnet.bilinear(*detached, "sigmoid")
    ones = torch.ones_like(y)
    assert_float32_arithmetic_rounded_once(detached, "sigmoid", y, ones, grads)
