"""Mixed precision: matnet::bilinear under torch.autocast, against the float32 pure-PyTorch reference
on the original float32 data, with error bounds derived from the arithmetic (the rule itself is
stated in csrc/autocast/bilinear_autocast.cpp: on the CPU the operator runs in float32 and returns
x's dtype; on CUDA it runs in the autocast dtype, like torch.matmul).

Every bound has the form (roundings per term) × Σ|terms| (Higham, Accuracy and Stability of
Numerical Algorithms, §3.1): a sum of K products computed in floating point with unit roundoff u
is within γ_K = K·u / (1 − K·u) of the exact sum, relative to the sum of the terms' absolute
values. K is the reduction length, so the tolerances grow with it. Σ|terms| of every output and
gradient entry is computed exactly (float64) by evaluating the same expression on |U|, |X|, |V|,
|B| and the absolute output weights.
"""
import pytest
import torch

import matnet_torch
from matnet_torch import reference
from conftest import requires_cuda

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
SIXTEEN_BIT = [torch.bfloat16, torch.float16]

# |σ'| ≤ 1 for all four activations. σ' is computed from Y: Y(1 − Y) for sigmoid, 1 − Y² for tanh,
# so it moves by at most |1 − 2Y| ≤ 1, resp. |2Y| ≤ 2, times Y's error (identity: σ' = 1 exactly).
SIGMA_PRIME_PER_Y_ERROR = {"identity": 0.0, "sigmoid": 1.0, "tanh": 2.0}
# CPU sigmoid and tanh are polynomial approximations accurate to a few ulp; both sides together
# err by at most this many float32 roundings of a value of magnitude ≤ 1.
ACTIVATION_ROUNDINGS = 16

# (x shape, (m, n)): the paper's first layer on a small batch, a non-square layer with leading
# dimensions, and a long reduction (p·q = 3000).
SHAPES = [((16, 28, 28), (20, 20)), ((2, 3, 7, 6), (4, 3)), ((8, 60, 50), (5, 4))]
SHAPE_IDS = ["mnist", "leading-dims", "long-reduction"]


def gamma(terms: int, unit_roundoff: float) -> float:
    return terms * unit_roundoff / (1 - terms * unit_roundoff)


def float32_inputs(x_shape, out_shape, device, bias):
    p, q = x_shape[-2:]
    m, n = out_shape
    x = torch.rand(*x_shape, device=device)
    u, v = torch.randn(m, p, device=device) / p**0.5, torch.randn(n, q, device=device) / q**0.5
    b = torch.randn(m, n, device=device) if bias else None
    return x, u, v, b


def absolute_terms(x, u, v, b):
    """Σ_rc |U_ar| |X_rc| |V_bc| + |B_ab| per output entry, exactly, as a float64 autograd graph in
    the absolute values (whose gradients are Σ|terms| of the gradients' entries)."""
    leaves = [t.detach().double().abs().requires_grad_() for t in (x, u, v)]
    b_abs = b.detach().double().abs().requires_grad_() if b is not None else None
    s = leaves[1] @ leaves[0] @ leaves[2].mT
    return (s + b_abs if b_abs is not None else s), leaves + [b_abs]


def forward_error(x, u, v, b, activation, input_roundoff):
    """Bound on |z̃ − z| of the pre-activation computed in float32 from x rounded with
    input_roundoff, against the float32 reference from the exact x: the rounding of x perturbs each
    term by at most input_roundoff, and each float32 evaluation (the operator's, the reference's)
    is within γ_{p+q+2} (q products summed, times U, p summed, plus B) of the exact value."""
    p, q = x.shape[-2:]
    s, _ = absolute_terms(x, u, v, b)
    return (input_roundoff + 2 * gamma(p + q + 2, UNIT_ROUNDOFF[torch.float32])) * s.detach()


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("x_dtype", SIXTEEN_BIT + [torch.float32], ids=str)
@pytest.mark.parametrize("autocast_dtype", SIXTEEN_BIT, ids=str)
@pytest.mark.parametrize("x_shape,out_shape", SHAPES, ids=SHAPE_IDS)
def test_cpu_autocast_runs_in_float32_and_returns_x_dtype(activation, bias, x_dtype, autocast_dtype, x_shape,
                                                         out_shape):
    torch.manual_seed(0)
    x, u, v, b = float32_inputs(x_shape, out_shape, "cpu", bias)
    x_low = x.to(x_dtype)  # as a 16-bit layer before this one would deliver it
    with torch.autocast("cpu", dtype=autocast_dtype):
        y = matnet_torch.bilinear(x_low, u, v, b, activation)
    assert y.dtype == x_dtype
    y_reference = reference.bilinear(x, u, v, b, activation)

    # σ is 1-Lipschitz; the result is rounded once to x's dtype (no rounding for float32).
    output_roundoff = UNIT_ROUNDOFF[x_dtype] if x_dtype != torch.float32 else 0.0
    pre_activation = forward_error(x, u, v, b, activation, UNIT_ROUNDOFF[x_dtype] if x_dtype != torch.float32 else 0.0)
    close = pre_activation + ACTIVATION_ROUNDINGS * UNIT_ROUNDOFF[torch.float32]
    bound = output_roundoff * (y_reference.double().abs() + close) + close
    error = (y.double() - y_reference.double()).abs()
    assert (error <= bound).all(), f"largest error {error.max():.3g}, bound there {bound.flatten()[error.argmax()]:.3g}"


def gradient_bounds(x, u, v, b, weights, activation, roundoff, flips):
    """Bounds on the gradients' errors: each gradient entry is a sum over the reduction of terms
    W ⊙ σ'(Z) times entries of U, V, X, with |σ'| ≤ 1. Relative per-term perturbations: roundoff
    (the 16-bit roundings of x and of the output's gradient), γ_K of two float32 evaluations, K the
    longest reduction (N·n·q for dU, N·m·p for dV); σ' itself differs by a multiple of Y's error
    (or, for relu, by 1 where the two computations may disagree about z's sign: ``flips``)."""
    batch = x[..., 0, 0].numel()
    (m, p), (n, q) = u.shape, v.shape
    longest = batch * max(n * q, m * p, m * n) + 2
    relative = roundoff + 2 * gamma(longest, UNIT_ROUNDOFF[torch.float32])
    s, leaves = absolute_terms(x, u, v, b)
    needs = [t for t in leaves if t is not None]
    weights_abs = weights.double().abs()
    direct = torch.autograd.grad((weights_abs * s).sum(), needs, retain_graph=True)
    y_error = forward_error(x, u, v, b, activation, roundoff) + ACTIVATION_ROUNDINGS * UNIT_ROUNDOFF[torch.float32]
    sigma_prime_error = flips if activation == "relu" else SIGMA_PRIME_PER_Y_ERROR[activation] * y_error
    through_sigma_prime = torch.autograd.grad((weights_abs * sigma_prime_error * s).sum(), needs)
    return [relative * d + e for d, e in zip(direct, through_sigma_prime)]


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("x_dtype", SIXTEEN_BIT, ids=str)
@pytest.mark.parametrize("x_shape,out_shape", SHAPES, ids=SHAPE_IDS)
def test_cpu_autocast_gradients(activation, x_dtype, x_shape, out_shape):
    torch.manual_seed(0)
    x, u, v, b = float32_inputs(x_shape, out_shape, "cpu", bias=True)
    weights = torch.randn(*x_shape[:-2], *out_shape)  # L = Σ W ⊙ Y
    x_low = x.to(x_dtype).requires_grad_()
    params = [t.clone().requires_grad_() for t in (u, v, b)]
    with torch.autocast("cpu", dtype=x_dtype):
        y = matnet_torch.bilinear(x_low, *params, activation)
    (y.float() * weights).sum().backward()
    assert x_low.grad.dtype == x_dtype and all(t.grad.dtype == torch.float32 for t in params)

    leaves = [t.clone().requires_grad_() for t in (x, u, v, b)]
    (reference.bilinear(*leaves, activation) * weights).sum().backward()
    roundoff = 2 * UNIT_ROUNDOFF[x_dtype]  # x rounded, and ∂L/∂Y rounded to x's dtype by autograd
    z_error = forward_error(x, u, v, b, activation, roundoff)
    flips = ((leaves[1] @ x @ leaves[2].mT + leaves[3]).detach().double().abs() <= z_error).double()
    bounds = gradient_bounds(x, u, v, b, weights, activation, roundoff, flips)
    bounds[0] = bounds[0] + UNIT_ROUNDOFF[x_dtype] * leaves[0].grad.double().abs()  # dX is returned in x's dtype
    for name, got, expected, bound in zip("xuvb", [x_low, *params], leaves, bounds):
        error = (got.grad.double() - expected.grad.double()).abs()
        assert (error <= bound).all(), f"d{name}: largest error {error.max():.3g} exceeds its bound"


def test_cpu_autocast_leaves_float64_alone():
    x, u, v, b = (t.double() for t in float32_inputs((3, 4, 5), (2, 3), "cpu", bias=True))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = matnet_torch.bilinear(x, u, v, b, "tanh")
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, reference.bilinear(x, u, v, b, "tanh"), rtol=1e-12, atol=1e-12)


def test_sixteen_bit_cpu_input_outside_autocast_runs_in_sixteen_bits():
    # The same result as autocast's float32 run: float32 arithmetic, one rounding (test_drop_in.py).
    x, u, v, b = (t.bfloat16() for t in float32_inputs((3, 4, 5), (2, 3), "cpu", bias=True))
    y = matnet_torch.bilinear(x, u, v, b, "tanh")
    assert y.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(y, matnet_torch.bilinear(x, u, v, b, "tanh"))


def multimodal_inputs(device, dtypes):
    """Two modalities of different shapes (3, p_j, q_j) mapped to 4×5, in float32, x^j cast to dtypes[j]."""
    xs = [torch.rand(3, 6, 7, device=device).to(dtypes[0]), torch.rand(3, 2, 9, device=device).to(dtypes[1])]
    us = [torch.randn(4, x.shape[-2], device=device) for x in xs]
    vs = [torch.randn(5, x.shape[-1], device=device) for x in xs]
    return xs, us, vs, torch.randn(4, 5, device=device)


@pytest.mark.parametrize("dtypes", [(torch.bfloat16,) * 2, (torch.float16, torch.bfloat16), (torch.float32,) * 2],
                         ids=["bfloat16", "mixed", "float32"])
def test_cpu_autocast_of_multi_bilinear_is_the_float32_operator_in_the_modalities_dtype(dtypes):
    torch.manual_seed(0)
    xs, us, vs, b = multimodal_inputs("cpu", dtypes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = torch.ops.matnet.multi_bilinear(xs, us, vs, b, "sigmoid")
    result = torch.promote_types(*dtypes)  # float16 with bfloat16 promotes to float32
    assert y.dtype == result
    expected = torch.ops.matnet.multi_bilinear([x.float() for x in xs], us, vs, b, "sigmoid").to(result)
    assert torch.equal(y, expected)


@requires_cuda
@pytest.mark.parametrize("autocast_dtype", SIXTEEN_BIT, ids=str)
def test_cuda_autocast_of_multi_bilinear_runs_in_the_autocast_dtype(autocast_dtype):
    xs, us, vs, b = multimodal_inputs("cuda", (torch.float32,) * 2)
    with torch.autocast("cuda", dtype=autocast_dtype):
        assert torch.ops.matnet.multi_bilinear(xs, us, vs, b, "sigmoid").dtype == autocast_dtype


@requires_cuda
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("autocast_dtype", SIXTEEN_BIT, ids=str)
@pytest.mark.parametrize("x_shape,out_shape", SHAPES, ids=SHAPE_IDS)
def test_cuda_autocast_runs_in_the_autocast_dtype(activation, autocast_dtype, x_shape, out_shape):
    torch.manual_seed(0)
    x, u, v, b = float32_inputs(x_shape, out_shape, "cuda", bias=True)
    params = [t.clone().requires_grad_() for t in (u, v, b)]
    with torch.autocast("cuda", dtype=autocast_dtype):
        y = matnet_torch.bilinear(x, *params, activation)
    assert y.dtype == autocast_dtype
    y.float().sum().backward()
    assert all(t.grad.dtype == torch.float32 and t.grad.isfinite().all() for t in params)

    # Per term: x, u, v rounded to the autocast dtype (3 roundings), the intermediate product
    # rounded (1), B rounded and added (2), the reduction of p + q terms which cuBLAS may carry out
    # in 16 bits (torch allows reduced-precision reductions by default), the 16-bit epilogue (1).
    p, q = x.shape[-2:]
    u16 = UNIT_ROUNDOFF[autocast_dtype]
    s, _ = absolute_terms(x, u, v, b)
    y_reference = reference.bilinear(x, u, v, b, activation).double()
    bound = (6 * u16 + gamma(p + q, u16)) * s.detach() + u16 * y_reference.abs()
    error = (y.double() - y_reference).abs()
    assert (error <= bound).all(), f"largest error {error.max():.3g}"
