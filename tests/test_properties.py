"""Seeded property-based fuzzing of the operators against the float64 reference: random shapes,
leading dimensions (empty ones too), strides, dtypes, activations, bias, CPU kernel variants and
special values (NaN, ±0, subnormals, large finite values) planted in the inputs.

The suite runs MATNET_FUZZ_EXAMPLES examples (default 120, derandomized: the same cases every run,
well under a minute). A longer campaign, fresh random cases each time:

    MATNET_FUZZ_EXAMPLES=30000 MATNET_FUZZ_RANDOM=1 python -m pytest -q tests/test_properties.py
"""
import os

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import matnet_torch
from matnet_torch import reference
from conftest import CPU_CAPABILITIES, LAYOUTS, TOLERANCES, make_layout

EXAMPLES = int(os.environ.get("MATNET_FUZZ_EXAMPLES", "120"))
DERANDOMIZE = os.environ.get("MATNET_FUZZ_RANDOM", "0") != "1"

# Planted values whose effect does not depend on the order in which sums are associated (an
# infinity does: inf − inf is NaN in one order and not in another, see test_special_values.py).
SPECIAL_VALUES = [float("nan"), 0.0, -0.0, 1e-40, -1e-40, 1e4, -1e4, 3e4, -3e4]


@st.composite
def bilinear_problems(draw):
    batch = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    p, q, m, n = (draw(st.integers(1, 40 if draw(st.booleans()) else 7)) for _ in range(4))
    return dict(
        batch=batch, p=p, q=q, m=m, n=n,
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        activation=draw(st.sampled_from(matnet_torch.ACTIVATIONS)),
        bias=draw(st.booleans()),
        layout=draw(st.sampled_from(LAYOUTS)),
        capability=draw(st.sampled_from(CPU_CAPABILITIES)),
        specials=draw(st.lists(st.tuples(st.sampled_from("xubg"), st.integers(0, 2**20),
                                         st.sampled_from(SPECIAL_VALUES)), max_size=3)),
        seed=draw(st.integers(0, 2**16)),
    )


def plant(tensors, specials):
    """Writes each (tensor name, position, value) into that tensor's flattened storage."""
    for name, position, value in specials:
        tensor = tensors.get(name)
        if tensor is not None and tensor.numel() > 0:
            tensor.view(-1)[position % tensor.numel()] = value


def assert_matches(actual, expected, dtype, scale, length):
    """NaN and ±inf exactly where the reference has them; elsewhere within the dtype's tolerance plus
    the rounding bound of the sums: a sum of products of reduction `length` carries at most about
    length·eps·Σ|terms| of rounding error, and `scale` is that Σ|terms| (the same products on the
    absolute values; σ and σ' are 1-Lipschitz and bounded by 1, so they do not enlarge it). Without
    the bound a planted 3e4 would make float32 cancellation look like a bug."""
    actual = actual.double()
    assert torch.equal(actual.isnan(), expected.isnan())
    infinite = expected.isinf()
    assert torch.equal(actual[infinite], expected[infinite])
    finite = expected.isfinite()
    tolerance = TOLERANCES[dtype]
    allowed = tolerance["atol"] + tolerance["rtol"] * expected.abs() + 4 * length * torch.finfo(dtype).eps * scale
    assert bool((actual - expected).abs()[finite].le(allowed[finite]).all()), (actual[finite], expected[finite])


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE)
@given(bilinear_problems())
def test_matches_reference(problem):
    generator = torch.Generator().manual_seed(problem["seed"])
    dtype, (p, q, m, n) = problem["dtype"], (problem["p"], problem["q"], problem["m"], problem["n"])

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    tensors = dict(
        x=rand(*problem["batch"], p, q),
        u=rand(m, p) / p**0.5,
        v=rand(n, q) / q**0.5,
        b=rand(m, n) if problem["bias"] else None,
        g=rand(*problem["batch"], m, n),
    )
    plant(tensors, problem["specials"])
    x = make_layout(tensors["x"].to(dtype), problem["layout"]).requires_grad_()
    u, v = tensors["u"].to(dtype).requires_grad_(), tensors["v"].to(dtype).requires_grad_()
    bias = tensors["b"].to(dtype).requires_grad_() if problem["bias"] else None
    leaves = [t for t in (x, u, v, bias) if t is not None]

    previous = matnet_torch.cpu_capability()
    matnet_torch.set_cpu_capability(problem["capability"])
    try:
        y = matnet_torch.bilinear(x, u, v, bias, problem["activation"])
        grads = torch.autograd.grad(y, leaves, tensors["g"].to(dtype))
    finally:
        matnet_torch.set_cpu_capability(previous)

    # The reference sees the inputs as rounded to dtype, in float64; the rounding scale is the same
    # computation (identity, so σ' = 1) on their absolute values.
    grad_y = tensors["g"].to(dtype).double()
    doubles = [t.detach().double().requires_grad_() for t in leaves]
    expected_y = reference.bilinear(*doubles[:3], doubles[3] if bias is not None else None, problem["activation"])
    expected_grads = torch.autograd.grad(expected_y, doubles, grad_y)
    magnitudes = [t.detach().double().abs().nan_to_num().requires_grad_() for t in leaves]
    scale_y = reference.bilinear(*magnitudes[:3], magnitudes[3] if bias is not None else None, "identity")
    scale_grads = torch.autograd.grad(scale_y, magnitudes, grad_y.abs().nan_to_num())
    length = p + q + m + n
    assert_matches(y, expected_y, dtype, scale_y.detach(), length)
    for grad, expected, scale in zip(grads, expected_grads, scale_grads):
        assert_matches(grad, expected, dtype, scale, length)
