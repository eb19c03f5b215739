"""CUDA-only properties of the bilinear operators (skipped without a GPU): the batched-GEMM path for
shapes too large for the fused kernels, bit-identical gradients run to run, the current stream, and
64-bit indexing past 2³¹ elements."""
import pytest
import torch

import matnet_torch
from conftest import CUDA_AVAILABLE, bilinear_tolerances, requires_cuda, gradients_from_saved_output

pytestmark = requires_cuda


def make_inputs(x_shape, out_shape, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    (p, q), (m, n) = x_shape[-2:], out_shape

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to("cuda", dtype)

    return rand(*x_shape), rand(m, p, scale=p**-0.5), rand(n, q, scale=q**-0.5), rand(m, n)


# Sides longer than kLongestFusedSide (32) take the batched-GEMM path (csrc/cuda/bilinear_cuda.cpp).
@pytest.mark.parametrize(
    "x_shape,out_shape",
    [((5, 33, 7), (2, 3)), ((4, 64, 64), (64, 64)), ((3, 130, 129), (128, 131)), ((2, 200, 7), (5, 160))],
    ids=["33x7-2x3", "64-64", "129-131", "200x7-5x160"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_shapes_beyond_the_fused_kernels_match_reference(x_shape, out_shape, dtype, activation):
    inputs = make_inputs(x_shape, out_shape, dtype)
    leaves = [t.clone().requires_grad_() for t in inputs]
    y = matnet_torch.bilinear(*leaves, activation=activation)
    grad_y = torch.randn(y.shape, dtype=torch.float64).to("cuda", dtype)
    grads = torch.autograd.grad(y, leaves, grad_y)
    tolerances = bilinear_tolerances(dtype, *inputs[:3], grad_y)
    expected_y = matnet_torch.reference.bilinear(*(t.double() for t in inputs), activation=activation)
    torch.testing.assert_close(y.double(), expected_y, **tolerances[0])
    for grad, expected, tolerance in zip(grads, gradients_from_saved_output(inputs, activation, grad_y, y), tolerances[1:]):
        torch.testing.assert_close(grad.double().cpu(), expected, **tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_gradients_are_bit_identical_run_to_run(dtype):
    # Per-block partial sums added in block order, no atomics (csrc/cuda/fused_backward.cu).
    leaves = [t.requires_grad_() for t in make_inputs((20000, 28, 28), (20, 20), dtype)]
    first = torch.autograd.grad(matnet_torch.bilinear(*leaves, activation="sigmoid").sum(), leaves)
    second = torch.autograd.grad(matnet_torch.bilinear(*leaves, activation="sigmoid").sum(), leaves)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_runs_on_the_current_stream():
    inputs = [t.requires_grad_() for t in make_inputs((500, 28, 28), (20, 20), torch.float32)]
    expected = torch.autograd.grad(matnet_torch.bilinear(*inputs, activation="tanh").square().sum(), inputs)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        grads = torch.autograd.grad(matnet_torch.bilinear(*inputs, activation="tanh").square().sum(), inputs)
    torch.cuda.current_stream().wait_stream(stream)
    for grad, expected_grad in zip(grads, expected):
        torch.testing.assert_close(grad, expected_grad)


@pytest.mark.skipif(CUDA_AVAILABLE and torch.cuda.mem_get_info()[0] < 24 * 2**30, reason="needs 24 GiB of free GPU memory")
def test_batches_past_two_to_the_31_elements():
    # x has 2.74 million 28×28 samples in float16: more than 2³¹ elements, so a 32-bit index would
    # wrap; the last samples must still be right.
    batch = 2**31 // (28 * 28) + 1000
    x = torch.randn(batch, 28, 28, device="cuda", dtype=torch.float16)
    u, v, bias = (t.requires_grad_() for t in make_inputs((1, 28, 28), (20, 20), torch.float16)[1:])
    x.requires_grad_()
    y = matnet_torch.bilinear(x, u, v, bias, "sigmoid")
    (grad_x,) = torch.autograd.grad(y, x, torch.ones_like(y))
    tail = slice(batch - 500, batch)
    expected_y = matnet_torch.reference.bilinear(x[tail].double(), u.double(), v.double(), bias.double(), "sigmoid")
    ones = torch.ones_like(y[tail])
    y_tolerance, grad_x_tolerance = bilinear_tolerances(torch.float16, x[tail], u, v, ones)[:2]
    torch.testing.assert_close(y[tail].double(), expected_y, **y_tolerance)
    expected_grad_x = gradients_from_saved_output((x[tail], u, v, bias), "sigmoid", ones, y[tail])[0]
    torch.testing.assert_close(grad_x[tail].double().cpu(), expected_grad_x, **grad_x_tolerance)
