"""matnet::multi_bilinear, Y = σ(Σ_j U_j X^j V_jᵀ + B) over D inputs of their own sizes, and its
backward operator: forward and gradients against the float64 reference over device × dtype ×
activation × bias × D × shape × layout under every CPU kernel variant, gradcheck, every subset of
inputs requiring grad, D = 1 equal to bilinear bit for bit, thread-count independence, opcheck,
torch.compile, and the errors."""
import contextlib
import itertools
import re

import pytest
import torch

import matnet_torch
from matnet_torch import reference
from conftest import (DEVICE_DTYPES, DEVICES, LAYOUTS, TOLERANCES, make_inputs, make_layout, multi_bilinear_tolerances,
                      multi_gradients_from_saved_output, requires_cuda)

multi_bilinear = torch.ops.matnet.multi_bilinear
multi_bilinear_backward = torch.ops.matnet.multi_bilinear_backward

# name -> (leading dims, sizes (p_j, q_j) of five inputs of which a test takes the first D, (m, n)).
SHAPES = {
    "different-sizes": ((4,), [(7, 6), (3, 5), (1, 8), (9, 2), (4, 4)], (4, 3)),  # non-square
    "empty-batch": ((0,), [(3, 4), (2, 5), (3, 4), (1, 1), (6, 2)], (2, 5)),
    "1x1": ((3,), [(1, 1)] * 5, (1, 1)),
    "leading-dims": ((2, 3), [(4, 5), (3, 2), (4, 5), (5, 4), (1, 3)], (6, 7)),
    "no-batch": ((), [(4, 5), (2, 3), (6, 1), (4, 5), (3, 3)], (3, 2)),
    "zero-inner": ((3,), [(0, 4), (2, 3), (3, 0), (0, 0), (5, 1)], (2, 5)),
    "superres": ((33,), [(15, 15)] * 5, (10, 10)),  # the paper's encoder: 5 modalities 15×15 → 10×10
    "mixed-sizes": ((3,), [(28, 28), (14, 14), (7, 7), (28, 28), (14, 14)], (10, 10)),
}
INPUT_COUNTS = [1, 2, 5]
BIAS = pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
INPUTS = pytest.mark.parametrize("inputs", INPUT_COUNTS, ids="D={}".format)


def make_multi_inputs(shape, inputs, dtype, device, bias=True):
    """Random (xs, us, vs, bias) for the first `inputs` inputs of a SHAPES entry; input j is
    make_inputs' layer with seed j, the bias that of input 0."""
    leading, sizes, out_shape = shape
    layers = [
        make_inputs(leading + size, out_shape, dtype, device, bias=bias and j == 0, seed=j)
        for j, size in enumerate(sizes[:inputs])
    ]
    xs, us, vs, biases = (list(column) for column in zip(*layers))
    return xs, us, vs, biases[0]


def flatten(xs, us, vs, bias):
    """The operator's differentiable inputs in autograd's order: xs…, us…, vs…, then bias if any."""
    return [*xs, *us, *vs] + ([bias] if bias is not None else [])


def unflatten(tensors, inputs):
    """(xs, us, vs, bias) of flatten's list for D = inputs."""
    d = inputs
    return tensors[:d], tensors[d : 2 * d], tensors[2 * d : 3 * d], tensors[3 * d] if len(tensors) > 3 * d else None


@contextlib.contextmanager
def num_threads(threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def reference_result(tensors, inputs, activation, grad_y):
    """Output and gradients (in flatten's order) of the float64 reference on the CPU. On one thread:
    its matmuls are tiny, and on a busy machine a second OpenMP thread only adds waiting."""
    leaves = [t.detach().double().cpu().requires_grad_() for t in tensors]
    with num_threads(1):
        y = reference.multi_bilinear(*unflatten(leaves, inputs), activation)
        return y, torch.autograd.grad(y, leaves, grad_y.double().cpu())


def operator_result(tensors, inputs, activation):
    """Output of matnet::multi_bilinear on leaves of `tensors` (their strides kept), a seeded random
    output gradient, and the leaves' gradients for it."""
    leaves = [t.detach().requires_grad_() for t in tensors]
    y = multi_bilinear(*unflatten(leaves, inputs), activation)
    generator = torch.Generator().manual_seed(99)
    grad_y = torch.randn(y.shape, generator=generator, dtype=torch.float64).to(y.device, y.dtype)
    return y, grad_y, torch.autograd.grad(y, leaves, grad_y)


def check_against_reference(tensors, inputs, activation, dtype):
    """Asserts that output and gradients match the reference; returns the output. The gradients are
    those of the saved output (for 16-bit dtypes, the rounded one: conftest.gradients_from_saved_output),
    with tolerances derived from the arithmetic (conftest.rounded_once_tolerance)."""
    y, grad_y, grads = operator_result(tensors, inputs, activation)
    expected_y, _ = reference_result(tensors, inputs, activation, grad_y)
    xs, us, vs, bias = unflatten(tensors, inputs)
    y_tolerance, *grad_tolerances = multi_bilinear_tolerances(dtype, xs, us, vs, grad_y)
    assert y.dtype == dtype and y.is_contiguous()
    torch.testing.assert_close(y.double().cpu(), expected_y, **y_tolerance)
    expected_grads = multi_gradients_from_saved_output(xs, us, vs, bias, activation, grad_y, y)
    for grad, expected, tensor, tolerance in zip(grads, expected_grads, tensors, grad_tolerances):
        assert grad.shape == tensor.shape
        torch.testing.assert_close(grad.double().cpu(), expected, **tolerance)
    return y


# ---- against the reference, under every CPU kernel variant ------------------------------------


@pytest.mark.usefixtures("cpu_kernels")
@pytest.mark.parametrize("device,dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@BIAS
@INPUTS
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradients_match_reference(device, dtype, activation, bias, inputs, shape):
    y = check_against_reference(flatten(*make_multi_inputs(SHAPES[shape], inputs, dtype, device, bias)), inputs, activation, dtype)
    leading, _, out_shape = SHAPES[shape]
    assert y.shape == leading + out_shape


@pytest.mark.usefixtures("cpu_kernels")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", LAYOUTS + ["mixed"])
@pytest.mark.parametrize("weights_transposed", [False, True], ids=["weights", "weights-transposed"])
@INPUTS
def test_any_strides(device, dtype, layout, weights_transposed, inputs):
    xs, us, vs, bias = make_multi_inputs(SHAPES["different-sizes"], inputs, dtype, device)
    # "mixed": input j stored in its own layout.
    xs = [make_layout(x, LAYOUTS[j % len(LAYOUTS)] if layout == "mixed" else layout) for j, x in enumerate(xs)]
    if weights_transposed:  # column-major matrices
        us, vs, bias = [u.T.contiguous().T for u in us], [v.T.contiguous().T for v in vs], bias.T.contiguous().T
    check_against_reference(flatten(xs, us, vs, bias), inputs, "tanh", dtype)


@pytest.mark.usefixtures("cpu_kernels")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("shape", ["superres", "leading-dims"])
def test_gradient_broadcast_over_the_batch(device, dtype, activation, shape):
    """∂L/∂y of y.mean() (one value for every entry, strides 0), which the CPU backward reads without
    copying it for every sample, gives the reference's gradients (every dX wanted: on the GEMM path
    Δ is sample-major, and for the identity it is ∂L/∂y itself)."""
    tensors = flatten(*make_multi_inputs(SHAPES[shape], 2, dtype, device))
    leaves = [t.detach().requires_grad_() for t in tensors]
    y = multi_bilinear(*unflatten(leaves, 2), activation)
    grad_y = torch.tensor(1 / y.numel(), dtype=dtype, device=device).expand(y.shape)
    _, expected_grads = reference_result(tensors, 2, activation, grad_y)
    for grad, expected in zip(torch.autograd.grad(y, leaves, grad_y), expected_grads):
        torch.testing.assert_close(grad.double().cpu(), expected, **TOLERANCES[dtype])


@pytest.mark.usefixtures("cpu_kernels")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@BIAS
@INPUTS
@pytest.mark.parametrize("leading", [(2,), (2, 1), ()], ids=["batch", "leading-dims", "no-batch"])
def test_gradcheck_float64(device, activation, bias, inputs, leading):
    shape = (leading, [(3, 2), (2, 4), (1, 3), (2, 2), (3, 1)], (3, 2))
    tensors = [t.requires_grad_() for t in flatten(*make_multi_inputs(shape, inputs, torch.float64, device, bias))]
    assert torch.autograd.gradcheck(lambda *t: multi_bilinear(*unflatten(t, inputs), activation), tensors)


REQUIRES_GRAD_SUBSETS = list(itertools.product([False, True], repeat=7))  # D = 2: xs, us, vs, bias


def subset_id(flags):
    return "".join(name if flag else "-" for name, flag in zip(["x0", "x1", "u0", "u1", "v0", "v1", "b"], flags))


@pytest.mark.usefixtures("cpu_kernels")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("requires_grad", REQUIRES_GRAD_SUBSETS, ids=subset_id)
def test_every_subset_of_inputs_requiring_grad(device, requires_grad):
    tensors = flatten(*make_multi_inputs(SHAPES["different-sizes"], 2, torch.float64, device))
    leaves = [t.clone().requires_grad_(flag) for t, flag in zip(tensors, requires_grad)]
    y = multi_bilinear(*unflatten(leaves, 2), "sigmoid")
    assert y.requires_grad == any(requires_grad)
    if not any(requires_grad):
        return
    grad_y = torch.randn_like(y)
    y.backward(grad_y)
    _, expected = reference_result(tensors, 2, "sigmoid", grad_y)
    for leaf, flag, expected_grad in zip(leaves, requires_grad, expected):
        if flag:
            torch.testing.assert_close(leaf.grad.cpu(), expected_grad)
        else:
            assert leaf.grad is None


@pytest.mark.usefixtures("cpu_kernels")
@pytest.mark.parametrize("device,dtype", DEVICE_DTYPES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@BIAS
@pytest.mark.parametrize("shape", ["different-sizes", "empty-batch", "leading-dims", "superres"])
def test_one_input_is_bilinear_bit_for_bit(device, dtype, activation, bias, shape):
    (x,), (u,), (v,), b = make_multi_inputs(SHAPES[shape], 1, dtype, device, bias)
    leaves = [t.clone().requires_grad_() for t in flatten([x], [u], [v], b)]
    y = multi_bilinear(*unflatten(leaves, 1), activation)
    expected_y = torch.ops.matnet.bilinear(*leaves[:3], leaves[3] if bias else None, activation)
    assert torch.equal(y, expected_y)
    grad_y = torch.randn_like(y)
    for grad, expected in zip(torch.autograd.grad(y, leaves, grad_y), torch.autograd.grad(expected_y, leaves, grad_y)):
        assert torch.equal(grad, expected)


@pytest.mark.parametrize("shape", ["superres", "mixed-sizes"])
def test_result_does_not_depend_on_thread_count(cpu_kernels, shape):
    tensors = flatten(*make_multi_inputs(SHAPES[shape], 5, torch.float32, "cpu"))
    # Enough samples that the batch is split between threads.
    tensors = [t.repeat(40, 1, 1) if t.dim() == 3 else t for t in tensors]
    results = []
    for threads in (1, 2):
        with num_threads(threads):
            y, _, grads = operator_result(tensors, 5, "sigmoid")
        results.append([y, *grads])
    for one_thread, two_threads in zip(*results):
        if cpu_kernels == "default":
            # The portable path's products and batch sums are ATen GEMMs, whose blocking, and so
            # rounding, follows the thread count (as plain torch.matmul's does): equal to rounding.
            torch.testing.assert_close(one_thread, two_threads, **TOLERANCES[torch.float32])
        else:
            assert torch.equal(one_thread, two_threads)


def test_first_derivatives_with_create_graph_are_still_correct():
    tensors = [t.requires_grad_() for t in flatten(*make_multi_inputs(SHAPES["different-sizes"], 2, torch.float64, "cpu"))]
    grads = torch.autograd.grad(multi_bilinear(*unflatten(tensors, 2), "relu").sum(), tensors, create_graph=True)
    expected = torch.autograd.grad(reference.multi_bilinear(*unflatten(tensors, 2), "relu").sum(), tensors)
    for grad, ref_grad in zip(grads, expected):
        torch.testing.assert_close(grad, ref_grad)


# ---- dispatcher: opcheck, the backward operator's mask, torch.compile ------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@BIAS
@pytest.mark.parametrize("shape,inputs", [("different-sizes", 2), ("empty-batch", 2), ("leading-dims", 5), ("no-batch", 1)])
def test_opcheck_multi_bilinear(device, activation, bias, shape, inputs):
    tensors = [t.requires_grad_() for t in flatten(*make_multi_inputs(SHAPES[shape], inputs, torch.float64, device, bias))]
    xs, us, vs, b = unflatten(tensors, inputs)
    torch.library.opcheck(multi_bilinear.default, (xs, us, vs, b, activation))


# D = 2: [dx0, dx1, du0, du1, dv0, dv1, dbias]
BACKWARD_MASKS = [
    [True] * 7,
    [False] * 7,
    [True, True, False, False, False, False, False],
    [False, False, True, True, True, True, True],
    [True, False, False, True, True, False, False],
    [False] * 6 + [True],
]


def mask_id(mask):
    return "".join("1" if flag else "0" for flag in mask)


# Every activation with every gradient requested; every mask with one activation.
BACKWARD_OPCHECK_CASES = [(activation, BACKWARD_MASKS[0]) for activation in matnet_torch.ACTIVATIONS]
BACKWARD_OPCHECK_CASES += [("sigmoid", mask) for mask in BACKWARD_MASKS[1:]]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", ["different-sizes", "empty-batch"])
@pytest.mark.parametrize(
    "activation,mask", BACKWARD_OPCHECK_CASES, ids=[f"{activation}-{mask_id(mask)}" for activation, mask in BACKWARD_OPCHECK_CASES]
)
def test_opcheck_multi_bilinear_backward(device, shape, activation, mask):
    xs, us, vs, _ = make_multi_inputs(SHAPES[shape], 2, torch.float64, device, bias=False)
    y = multi_bilinear(xs, us, vs, None, activation)
    grad_y = torch.randn_like(y)
    torch.library.opcheck(multi_bilinear_backward.default, (grad_y, xs, us, vs, y, activation, mask))


@pytest.mark.usefixtures("cpu_kernels")
@pytest.mark.parametrize("mask", BACKWARD_MASKS, ids=mask_id)
def test_backward_returns_the_requested_gradients_in_mask_order(mask):
    tensors = flatten(*make_multi_inputs(SHAPES["different-sizes"], 2, torch.float64, "cpu"))
    xs, us, vs, bias = unflatten(tensors, 2)
    y = multi_bilinear(xs, us, vs, bias, "sigmoid")
    grad_y = torch.randn_like(y)
    requested = multi_bilinear_backward(grad_y, xs, us, vs, y, "sigmoid", mask)
    _, expected = reference_result(tensors, 2, "sigmoid", grad_y)
    wanted = [grad for grad, flag in zip(expected, mask) if flag]
    assert len(requested) == len(wanted)
    for grad, expected_grad in zip(requested, wanted):
        torch.testing.assert_close(grad, expected_grad)


def encode_decode(xs, us, vs, bias, r, s):
    """The multimodal autoencoder's shape of computation: H = σ(Σ_j U_j X^j V_jᵀ + B), then R H Sᵀ."""
    return torch.ops.matnet.bilinear(multi_bilinear(xs, us, vs, bias, "sigmoid"), r, s, None, "tanh")


def compile_inputs(batch, device):
    """Leaves of encode_decode for a batch of three inputs of different sizes (flat, then D = 3)."""
    _, sizes, out_shape = SHAPES["different-sizes"]
    xs, us, vs, bias = make_multi_inputs(((batch,), sizes, out_shape), 3, torch.float64, device)
    decoder = make_inputs((4, 3), (5, 6), torch.float64, device, bias=False, seed=7)[1:3]
    return [t.detach().requires_grad_() for t in [*flatten(xs, us, vs, bias), *decoder]]


def outputs_and_gradients(function, leaves):
    y = function(*unflatten(leaves[:-2], 3), *leaves[-2:])
    return [y, *torch.autograd.grad(y.square().sum(), leaves)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_compile_fullgraph_matches_eager(device, dynamic):
    torch._dynamo.reset()
    compiled = torch.compile(encode_decode, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for batch in (7, 3):  # a second batch size exercises the dynamic shape (or a recompile)
        leaves = compile_inputs(batch, device)
        for got, expected in zip(outputs_and_gradients(compiled, leaves), outputs_and_gradients(encode_decode, leaves)):
            torch.testing.assert_close(got, expected)


def test_compile_with_inductor_matches_eager():
    torch._dynamo.reset()
    compiled = torch.compile(encode_decode, fullgraph=True)
    leaves = compile_inputs(5, "cpu")
    for got, expected in zip(outputs_and_gradients(compiled, leaves), outputs_and_gradients(encode_decode, leaves)):
        torch.testing.assert_close(got, expected)


# ---- errors: each names the operator, the argument (with its index j) and the values ---------

# Three valid inputs of different sizes into 10×10; an error case changes some of them.
VALID_SHAPES = {
    "xs": [(2, 15, 15), (2, 14, 13), (2, 15, 15)],
    "us": [(10, 15), (10, 14), (10, 15)],
    "vs": [(10, 15), (10, 13), (10, 15)],
    "bias": [(10, 10)],
}


def zeros(shape, change=None):
    """Zeros of `shape`, or as changed: a new shape, or dict(shape=..., dtype=..., device=...)."""
    spec = dict(shape=change) if isinstance(change, tuple) else dict(change or {})
    return torch.zeros(spec.get("shape", shape), dtype=spec.get("dtype", torch.float32), device=spec.get("device", "cpu"))


def arguments(changes):
    """(xs, us, vs, bias): zeros of VALID_SHAPES, where changes maps "us[2]" (or "bias") to a change
    for zeros, or to None to leave that tensor out of its list."""
    lists = []
    for name, shapes in VALID_SHAPES.items():
        keys = [name] if name == "bias" else [f"{name}[{j}]" for j in range(len(shapes))]
        lists.append([zeros(shape, changes.get(key)) for key, shape in zip(keys, shapes) if changes.get(key, ()) is not None])
    xs, us, vs, (bias,) = lists
    return xs, us, vs, bias


def input_j(j, **spec):
    """The same change to xs[j], us[j] and vs[j]."""
    return {f"{name}[{j}]": dict(spec) for name in ("xs", "us", "vs")}


FLOAT8 = dict(dtype=torch.float8_e4m3fn)
ERRORS = [
    ({"us[2]": None}, "xs, us and vs must have the same length (one U and one V per input), got 3, 2 and 3"),
    ({"xs[1]": None}, "xs, us and vs must have the same length (one U and one V per input), got 2, 3 and 3"),
    ({"xs[1]": (3, 14, 13)}, "every input must have the same leading (batch) dimensions; xs[1] has [3] but xs[0] has [2]"),
    ({"xs[2]": (15, 15)}, "every input must have the same leading (batch) dimensions; xs[2] has [] but xs[0] has [2]"),
    ({"xs[2]": (2, 1, 15, 15)}, "every input must have the same leading (batch) dimensions; xs[2] has [2, 1] but xs[0] has [2]"),
    ({"xs[1]": (14,)}, "xs[1] must have at least 2 dimensions (..., p, q), got shape [14]"),
    ({"us[1]": (10, 14, 1)}, "us[1] must be a 2-D matrix (m, p), got shape [10, 14, 1]"),
    ({"vs[2]": (15,)}, "vs[2] must be a 2-D matrix (n, q), got shape [15]"),
    ({"us[2]": (10, 14)}, "us[2].size(1) (14) must equal xs[2].size(-2) (15)"),
    ({"vs[1]": (10, 12)}, "vs[1].size(1) (12) must equal xs[1].size(-1) (13)"),
    ({"us[2]": (9, 15)}, "us[2].size(0) (9) must equal us[0].size(0) (10): every input maps to the same m×n output"),
    ({"vs[1]": (11, 13)}, "vs[1].size(0) (11) must equal vs[0].size(0) (10): every input maps to the same m×n output"),
    ({"bias": (10, 9)}, "bias must have shape [m, n] = [10, 10], got [10, 9]"),
    ({"bias": (100,)}, "bias must have shape [m, n] = [10, 10], got [100]"),
    ({"us[1]": dict(dtype=torch.float64)}, "expected us[1] to have the dtype of xs[1] (Float), got Double"),
    (input_j(2, dtype=torch.float64), "expected xs[2] to have the dtype of xs[0] (Float), got Double"),
    ({"bias": dict(dtype=torch.float64)}, "expected bias to have the dtype of xs[0] (Float), got Double"),
    ({"xs[1]": dict(dtype=torch.int64)}, "xs[1] must be a floating-point tensor, got Long"),
    ({**input_j(0, **FLOAT8), **input_j(1, **FLOAT8), **input_j(2, **FLOAT8), "bias": FLOAT8},
     "xs[0] has dtype Float8_e4m3fn, which has no cpu kernel (float32, float64, bfloat16 and float16 do)"),
    ({"us[1]": dict(device="meta")}, "expected xs[1] and us[1] on the same device, got cpu and meta"),
    (input_j(1, device="meta"), "expected xs[0] and xs[1] on the same device, got cpu and meta"),
]


@pytest.mark.parametrize("changes,message", ERRORS, ids=[message[:45] for _, message in ERRORS])
def test_bad_input_raises_a_clear_error(changes, message):
    with pytest.raises(RuntimeError, match=re.escape(f"matnet::multi_bilinear: {message}")):
        multi_bilinear(*arguments(changes), "sigmoid")


def test_unknown_activation_is_a_value_error():
    message = "matnet::multi_bilinear: unknown activation 'swish'; expected one of identity, sigmoid, tanh, relu"
    with pytest.raises(ValueError, match=re.escape(message)):
        multi_bilinear(*arguments({}), "swish")


EMPTY_LIST_MESSAGE = "matnet::multi_bilinear: xs must hold at least one input matrix batch, got an empty list"


def test_empty_lists_are_refused_by_the_kernels():
    for key in (torch._C.DispatchKey.CPU, torch._C.DispatchKey.Meta):
        with pytest.raises(RuntimeError, match=re.escape(EMPTY_LIST_MESSAGE)):
            multi_bilinear.default.redispatch(torch._C.DispatchKeySet(key), [], [], [], None, "identity")


def test_empty_lists_raise_a_clear_error():
    """With no tensor at all, the dispatcher runs the CompositeExplicitAutograd kernel
    (csrc/fallbacks/unsupported_devices.cpp), which runs the checks."""
    with pytest.raises(RuntimeError, match=re.escape(EMPTY_LIST_MESSAGE)):
        multi_bilinear([], [], [], None, "identity")


def backward_call(grad_y=None, y=None, mask=(True,) * 10):
    """matnet::multi_bilinear_backward on VALID_SHAPES' inputs, grad_y and y zeros of shape (2, 10, 10)
    or as changed (see zeros)."""
    xs, us, vs, _ = arguments({})
    return multi_bilinear_backward(zeros((2, 10, 10), grad_y), xs, us, vs, zeros((2, 10, 10), y), "sigmoid", list(mask))


BACKWARD_ERRORS = [
    (dict(mask=(True,) * 4), "output_mask must have 3·len(xs) + 1 = 10 entries ([dxs…, dus…, dvs…, dbias]), got 4"),
    (dict(mask=(True,) * 11), "output_mask must have 3·len(xs) + 1 = 10 entries ([dxs…, dus…, dvs…, dbias]), got 11"),
    (dict(grad_y=(2, 10, 9)), "grad_y must have shape [2, 10, 10], got [2, 10, 9]"),
    (dict(y=(3, 10, 10)), "y must have shape [2, 10, 10], got [3, 10, 10]"),
    (dict(y=dict(dtype=torch.float64)), "expected y to have the dtype of xs[0] (Float), got Double"),
]


@pytest.mark.parametrize("kwargs,message", BACKWARD_ERRORS, ids=[message[:45] for _, message in BACKWARD_ERRORS])
def test_backward_operator_checks_its_arguments(kwargs, message):
    with pytest.raises(RuntimeError, match=re.escape(f"matnet::multi_bilinear_backward: {message}")):
        backward_call(**kwargs)


def test_fake_kernels_raise_the_same_errors_under_compile():
    torch._dynamo.reset()
    compiled = torch.compile(lambda xs, us, vs: multi_bilinear(xs, us, vs, None, "sigmoid"), fullgraph=True, backend="aot_eager")
    message = "matnet::multi_bilinear: us[2].size(1) (14) must equal xs[2].size(-2) (15)"
    with pytest.raises(Exception, match=re.escape(message)):
        compiled([torch.randn(2, 15, 15)] * 3, [torch.randn(10, 15)] * 2 + [torch.randn(10, 14)], [torch.randn(10, 15)] * 3)


@pytest.mark.skipif(matnet_torch.has_cuda_kernels(), reason="this build has CUDA kernels")
def test_cuda_tensors_on_a_build_without_cuda_kernels():
    # No CUDA tensor can exist on a CPU-only torch, so call the kernel registered at the CUDA key directly.
    cuda_only = torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA)
    xs, us, vs, _ = make_multi_inputs(SHAPES["different-sizes"], 2, torch.float32, "cpu")
    with pytest.raises(RuntimeError, match="matnet::multi_bilinear: got tensors on .* but this build of matnet_torch has no CUDA kernels"):
        multi_bilinear.default.redispatch(cuda_only, xs, us, vs, None, "identity")


@requires_cuda
def test_mixed_cpu_and_cuda_inputs():
    with pytest.raises(RuntimeError, match=re.escape("matnet::multi_bilinear: expected xs[0] and xs[1] on the same device, got cuda:0 and cpu")):
        multi_bilinear(*arguments({**input_j(0, device="cuda"), "bias": dict(device="cuda")}), "sigmoid")
