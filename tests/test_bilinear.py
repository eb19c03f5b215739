"""matnet::bilinear against the pure-PyTorch reference: forward and gradients over
device × dtype × activation × bias × shape × layout and gradcheck, each under every CPU kernel
variant this CPU supports (second derivatives and torch.func: test_drop_in.py)."""
import itertools

import pytest
import torch

import matnet_torch
from matnet_torch import reference
from conftest import (DEVICE_DTYPES, DEVICES, LAYOUTS, SHAPE_IDS, SHAPES, TOLERANCES, bilinear_tolerances,
                      gradients_from_saved_output, make_inputs, make_layout)

pytestmark = pytest.mark.usefixtures("cpu_kernels")


def reference_result(inputs, activation, grad_y=None):
    """Output and gradients of the float64 reference."""
    leaves = [t.detach().double().cpu().requires_grad_() if t is not None else None for t in inputs]
    y = reference.bilinear(*leaves, activation=activation)
    if grad_y is None:
        return y, None
    grads = torch.autograd.grad(y, [t for t in leaves if t is not None], grad_y.double().cpu(), allow_unused=True)
    return y, grads


@pytest.mark.parametrize("device,dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("x_shape,out_shape", SHAPES, ids=SHAPE_IDS)
def test_forward_and_gradients_match_reference(device, dtype, activation, bias, x_shape, out_shape):
    inputs = make_inputs(x_shape, out_shape, dtype, device, bias)
    leaves = [t.clone().requires_grad_() if t is not None else None for t in inputs]
    y = matnet_torch.bilinear(*leaves, activation=activation)
    assert y.shape == x_shape[:-2] + out_shape and y.dtype == dtype and y.is_contiguous()

    grad_y = torch.randn(y.shape, dtype=torch.float64).to(device, dtype)
    expected_y, _ = reference_result(inputs, activation)
    y_tolerance, *grad_tolerances = bilinear_tolerances(dtype, *inputs[:3], grad_y)
    torch.testing.assert_close(y.double().cpu(), expected_y, **y_tolerance)

    grads = torch.autograd.grad(y, [t for t in leaves if t is not None], grad_y)
    expected_grads = gradients_from_saved_output(inputs, activation, grad_y, y)
    for grad, expected, tolerance in zip(grads, expected_grads, grad_tolerances):
        torch.testing.assert_close(grad.double().cpu(), expected, **tolerance)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("weights_transposed", [False, True], ids=["weights", "weights-transposed"])
def test_any_strides(device, dtype, layout, weights_transposed):
    inputs = make_inputs((6, 5, 7), (4, 3), dtype, device)
    x, u, v, bias = inputs
    x = make_layout(x, layout)
    if weights_transposed:
        u, v, bias = (t.T.contiguous().T for t in (u, v, bias))
    leaves = [t.clone().requires_grad_() if t.is_contiguous() else t.detach().requires_grad_() for t in (x, u, v, bias)]
    y = matnet_torch.bilinear(*leaves, activation="tanh")
    grad_y = torch.randn_like(y)
    expected_y, expected_grads = reference_result((x, u, v, bias), "tanh", grad_y)
    torch.testing.assert_close(y.double().cpu(), expected_y, **TOLERANCES[dtype])
    for grad, expected in zip(torch.autograd.grad(y, leaves, grad_y), expected_grads):
        torch.testing.assert_close(grad.double().cpu(), expected, **TOLERANCES[dtype])


BROADCAST_GRADIENTS = {  # (shape, random) -> a gradient of that shape with stride-0 dimensions
    # y.sum(): one value expanded to every entry (every stride 0).
    "sum": lambda shape, random: random(()).expand(shape),
    # One matrix for every sample (batch strides 0), contiguous or transposed.
    "matrix": lambda shape, random: random(shape[-2:]).expand(shape),
    "transposed-matrix": lambda shape, random: random(shape[-1:-3:-1]).T.expand(shape),
    # Broadcast over one leading dimension only: not one matrix for every sample.
    "partly": lambda shape, random: random((shape[0], 1) + shape[2:]).expand(shape),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("x_requires_grad", [False, True], ids=["no-dX", "dX"])
@pytest.mark.parametrize("grad_kind", BROADCAST_GRADIENTS)
def test_gradient_broadcast_over_the_batch(device, dtype, activation, x_requires_grad, grad_kind):
    """The CPU backward reads a ∂L/∂y that is one matrix for every sample (the gradient of y.sum() or
    y.mean()) with batch stride 0 instead of copying it N times; the gradients must not change. 3 × 45
    samples: full and partial blocks of every lane width, several slots of sums; on the GEMM path
    (default) both layouts of Δ (batch-last without dX, sample-major with it), and for the identity
    Δ is ∂L/∂y itself."""
    inputs = make_inputs((3, 45, 5, 7), (4, 6), dtype, device)
    leaves = [t.clone().requires_grad_(x_requires_grad or k > 0) for k, t in enumerate(inputs)]
    y = matnet_torch.bilinear(*leaves, activation=activation)
    generator = torch.Generator().manual_seed(1)
    grad_y = BROADCAST_GRADIENTS[grad_kind](
        y.shape, lambda shape: torch.randn(shape, generator=generator, dtype=dtype).to(device)
    )
    _, expected_grads = reference_result(inputs, activation, grad_y)
    wanted = [(leaf, expected) for leaf, expected in zip(leaves, expected_grads) if leaf.requires_grad]
    grads = torch.autograd.grad(y, [leaf for leaf, _ in wanted], grad_y)
    for grad, (_, expected) in zip(grads, wanted):
        torch.testing.assert_close(grad.double().cpu(), expected, **TOLERANCES[dtype])


@pytest.mark.parametrize("device", DEVICES)
def test_output_is_never_an_alias(device):
    x, u, v, bias = make_inputs((3, 2, 2), (2, 2), torch.float32, device)
    eye = torch.eye(2, device=device)
    y = matnet_torch.bilinear(x, eye, eye)
    torch.testing.assert_close(y, x)
    assert y.data_ptr() != x.data_ptr()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("requires_grad", list(itertools.product([False, True], repeat=4)), ids=lambda r: "".join("xuvb"[i] if f else "-" for i, f in enumerate(r)))
def test_every_subset_of_inputs_requiring_grad(device, requires_grad):
    inputs = make_inputs((4, 3, 5), (2, 6), torch.float64, device)
    leaves = [t.clone().requires_grad_(flag) for t, flag in zip(inputs, requires_grad)]
    y = matnet_torch.bilinear(*leaves, activation="sigmoid")
    assert y.requires_grad == any(requires_grad)
    if not any(requires_grad):
        return
    grad_y = torch.randn_like(y)
    y.backward(grad_y)
    _, expected = reference_result(inputs, "sigmoid", grad_y)
    for leaf, flag, expected_grad in zip(leaves, requires_grad, expected):
        if flag:
            torch.testing.assert_close(leaf.grad.cpu(), expected_grad)
        else:
            assert leaf.grad is None


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("x_shape", [(3, 4, 5), (2, 2, 3, 2), (4, 3)], ids=["batch", "leading-dims", "no-batch"])
def test_gradcheck_float64(device, activation, x_shape):
    inputs = [t.requires_grad_() for t in make_inputs(x_shape, (3, 2), torch.float64, device)]
    assert torch.autograd.gradcheck(lambda *a: matnet_torch.bilinear(*a, activation=activation), inputs)


def test_gradcheck_without_bias():
    x, u, v, _ = (t.requires_grad_() if t is not None else None for t in make_inputs((3, 4, 5), (3, 2), torch.float64, "cpu", bias=False))
    assert torch.autograd.gradcheck(lambda *a: matnet_torch.bilinear(*a, None, "tanh"), (x, u, v))


def test_first_derivatives_with_create_graph_are_still_correct():
    inputs = [t.requires_grad_() for t in make_inputs((3, 4, 5), (3, 2), torch.float64, "cpu")]
    grads = torch.autograd.grad(matnet_torch.bilinear(*inputs, activation="relu").sum(), inputs, create_graph=True)
    expected = torch.autograd.grad(reference.bilinear(*inputs, activation="relu").sum(), inputs)
    for grad, ref_grad in zip(grads, expected):
        torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("threads", [1, 2])
def test_result_does_not_depend_on_thread_count(threads):
    inputs = [t.requires_grad_() for t in make_inputs((257, 9, 8), (5, 6), torch.float64, "cpu")]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y = matnet_torch.bilinear(*inputs, activation="sigmoid")
        grads = torch.autograd.grad(y.square().sum(), inputs)
    finally:
        torch.set_num_threads(previous)
    expected = torch.autograd.grad(reference.bilinear(*inputs, activation="sigmoid").square().sum(), inputs)
    for grad, ref_grad in zip(grads, expected):
        torch.testing.assert_close(grad, ref_grad)


@pytest.mark.parametrize("out_shape", [(10, 10), (20, 20)], ids=["batch-last", "sample-major"])
@pytest.mark.parametrize("x_requires_grad", [False, True], ids=["no-dX", "dX"])
def test_a_batch_of_several_chunks_matches_reference(out_shape, x_requires_grad):
    """The GEMM path (csrc/cpu/bilinear_gemm.cpp) runs large batches in chunks of about one L2 cache
    of X (256 KiB to 8 MiB; 3000 float64 samples of 28×28 are 18 MiB, so 3 to 74 chunks, the last
    one possibly shorter), writing the sums over samples with the first chunk and adding the
    others' to them; the lane kernels take these samples in blocks. A 10×10 output takes the GEMM
    path's batch-last layout (in the backward only where dX is not wanted), a 20×20 one its
    sample-major layout. Every variant must give the reference's output and gradients."""
    inputs = make_inputs((3000, 28, 28), out_shape, torch.float64, "cpu")
    leaves = [t.clone().requires_grad_(x_requires_grad or k > 0) for k, t in enumerate(inputs)]
    y = matnet_torch.bilinear(*leaves, activation="tanh")
    grad_y = torch.randn(y.shape, dtype=torch.float64)
    expected_y, expected_grads = reference_result(inputs, "tanh", grad_y)
    torch.testing.assert_close(y, expected_y)
    wanted = [(leaf, expected) for leaf, expected in zip(leaves, expected_grads) if leaf.requires_grad]
    grads = torch.autograd.grad(y, [leaf for leaf, _ in wanted], grad_y)
    for grad, (_, expected) in zip(grads, wanted):
        torch.testing.assert_close(grad, expected)


def test_gradients_are_the_same_bits_for_any_thread_count(cpu_kernels):
    """The lane kernels sum over samples (dU, dV, dB) in fixed slots of samples, whichever thread runs
    them, so training is bit-for-bit reproducible across thread counts. (The default variant's GEMMs
    are MKL's, whose sums may be grouped by thread: it is not covered by this promise.)"""
    if cpu_kernels == "default":
        pytest.skip("the GEMM path's BLAS may group sums by thread")
    inputs = [t.requires_grad_() for t in make_inputs((1000, 9, 8), (5, 6), torch.float32, "cpu")]
    previous = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            y = matnet_torch.bilinear(*inputs, activation="sigmoid")
            results.append([y, *torch.autograd.grad(y.square().sum(), inputs)])
    finally:
        torch.set_num_threads(previous)
    for one_thread, two_threads in zip(*results):
        assert torch.equal(one_thread, two_threads)
