"""Special values (±0, ±inf, NaN, ±1e4, ±3e4, the largest finite value, subnormals) in x, u, v, the
bias and the incoming gradient give what torch gives for the same pre-activation: the forward
equals torch.sigmoid/tanh/relu of it, the gradients equal autograd through them, NaN exactly
where torch has NaN; under every CPU kernel variant."""
import math

import pytest
import torch

import matnet_torch
from matnet_torch import reference

pytestmark = pytest.mark.usefixtures("cpu_kernels")

DTYPES = [torch.float32, torch.float64]


def specials(dtype):
    info = torch.finfo(dtype)
    subnormal = info.tiny / 8
    return [0.0, -0.0, math.inf, -math.inf, math.nan, 1e4, -1e4, 3e4, -3e4, info.max, -info.max,
            subnormal, -subnormal, 0.5, -2.0, 88.0, -88.0, -100.0, 44.0, -9.0]


def tolerance(dtype):
    """A few ulp relative (our exp and tanh are polynomials, torch's are SLEEF/libm: both within a
    few ulp of the truth); absolute one subnormal step, for results that underflow."""
    info = torch.finfo(dtype)
    return dict(rtol=8 * info.eps, atol=info.tiny * info.eps, equal_nan=True)


def derivative_slack(x, u, v, bias, activation, grad_y):
    """Absolute slack of each gradient from σ'(z), which both sides compute from y (tanh: 1 − y²,
    sigmoid: y − y²) and which cancels as |y| → 1: the forward's freedom of 8 eps·|y| in y (two
    faithful tanh may round apart) moves σ' by up to |dσ'/dy|·8 eps·|y| ≤ 16 eps (|y| ≤ 1). Each
    gradient carries σ' times the same products as through the identity, so the slack is 16 eps
    times those products' magnitudes: the identity's gradients of |x|, |u|, |v| under |grad_y|;
    none where they overflow (infinite results are compared exactly).
    (Two correctly rounded tanh(−10.5) in float64 give 1 − y² apart by 2.2e-16, 7e-8 relative.)"""
    if activation not in ("sigmoid", "tanh"):
        return [torch.zeros_like(t) for t in (x, u, v, bias)]
    magnitudes = [t.abs().requires_grad_() for t in (x, u, v, bias)]
    products = torch.autograd.grad(reference.bilinear(*magnitudes, "identity"), magnitudes, grad_y.abs())
    eps = torch.finfo(x.dtype).eps
    return [torch.where(product.isfinite(), 16 * eps * product, 0.0) for product in products]


def check_against_torch(x, u, v, bias, activation, grad_y, gradients="xuvb"):
    """matnet and the reference, same dtype, same inputs: outputs and the named gradients."""
    leaves = [t.clone().requires_grad_() for t in (x, u, v, bias)]
    reference_leaves = [t.clone().requires_grad_() for t in (x, u, v, bias)]
    y = matnet_torch.bilinear(*leaves, activation)
    expected = reference.bilinear(*reference_leaves, activation)
    torch.testing.assert_close(y, expected, **tolerance(x.dtype))
    grads = torch.autograd.grad(y, leaves, grad_y)
    expected_grads = torch.autograd.grad(expected, reference_leaves, grad_y)
    slacks = derivative_slack(x, u, v, bias, activation, grad_y)
    for name, grad, expected_grad, slack in zip("xuvb", grads, expected_grads, slacks):
        if name not in gradients:
            continue
        # Within the tolerance, or within the slack where that is finite (NaN compares false).
        close = torch.isclose(grad, expected_grad, **tolerance(x.dtype)) | ((grad - expected_grad).abs() <= slack)
        assert close.all(), f"d{name}: {grad[~close].tolist()} where torch has {expected_grad[~close].tolist()}"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_special_values_in_x(dtype, activation):
    # 1×1 matrices with U = V = 1 and B = 0: the pre-activation is x itself, one special per sample.
    x = torch.tensor(specials(dtype), dtype=dtype).view(-1, 1, 1)
    one, zero = torch.ones(1, 1, dtype=dtype), torch.zeros(1, 1, dtype=dtype)
    check_against_torch(x, one, one, zero, activation, torch.ones_like(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("where", ["u", "v", "bias"])
def test_special_values_in_weights_and_bias(dtype, activation, where):
    x = torch.tensor([0.5, -1.5, 2.0], dtype=dtype).view(-1, 1, 1)
    for value in specials(dtype):
        tensors = dict(u=torch.ones(1, 1, dtype=dtype), v=torch.ones(1, 1, dtype=dtype),
                       bias=torch.zeros(1, 1, dtype=dtype))
        tensors[where] = torch.full((1, 1), value, dtype=dtype)
        # dU and dV through an infinite weight, or one whose products overflow (the largest finite
        # value), meet inf·0 and inf − inf, whose NaN or inf depends on the order of association
        # (torch's own (U X) Vᵀ and U (X Vᵀ) differ there): compared only below overflow.
        below_overflow = math.isfinite(value) and abs(value) < 1e30
        gradients = "xuvb" if below_overflow or where == "bias" else "xb"
        check_against_torch(x, tensors["u"], tensors["v"], tensors["bias"], activation, torch.ones_like(x), gradients)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_special_values_in_the_incoming_gradient(dtype, activation):
    values = specials(dtype)
    # Pre-activations on both sides of relu's kink, so inactive units meet NaN and inf gradients.
    x = torch.tensor([(-1.0) ** k * 0.75 for k in range(len(values))], dtype=dtype).view(-1, 1, 1)
    one, zero = torch.ones(1, 1, dtype=dtype), torch.zeros(1, 1, dtype=dtype)
    check_against_torch(x, one, one, zero, activation, torch.tensor(values, dtype=dtype).view(-1, 1, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_a_special_value_in_a_larger_problem_spreads_as_in_torch(dtype, activation):
    """One NaN (or large) entry among ordinary ones, in a batch that is not a multiple of any vector
    width: it reaches exactly the outputs and gradients it reaches in torch. (An infinite entry meets
    inf − inf in sums whose NaN depends on the order of association, as between torch's own
    (U X) Vᵀ and U (X Vᵀ); the 1×1 tests above cover infinities.)"""
    generator = torch.Generator().manual_seed(0)
    for value in (math.nan, 3e4):
        x = torch.randn(37, 5, 4, generator=generator, dtype=dtype)
        x[11, 2, 1] = value
        u = torch.randn(3, 5, generator=generator, dtype=dtype) / 2
        v = torch.randn(6, 4, generator=generator, dtype=dtype) / 2
        bias = torch.randn(3, 6, generator=generator, dtype=dtype)
        leaves = [t.clone().requires_grad_() for t in (x, u, v, bias)]
        y = matnet_torch.bilinear(*leaves, activation)
        expected = reference.bilinear(*[t.double() for t in (x, u, v, bias)], activation)
        # Same NaN pattern and the same infinities as the float64 reference (finite values: as in
        # the other tests).
        assert torch.equal(y.isnan(), expected.isnan())
        assert torch.equal(y.isinf(), expected.isinf())
        grads = torch.autograd.grad(y, leaves, torch.ones_like(y))
        expected_leaves = [t.double().requires_grad_() for t in (x, u, v, bias)]
        expected_grads = torch.autograd.grad(reference.bilinear(*expected_leaves, activation), expected_leaves,
                                             torch.ones_like(expected))
        for grad, expected_grad in zip(grads, expected_grads):
            assert torch.equal(grad.isnan(), expected_grad.isnan())


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_saturated_tanh_gradients_are_as_accurate_as_torchs(sign):
    """1 − y² at |z| in [3, 9] cancels; it is only as good as y. Our float32 tanh must be within
    torch's own error (relative to float64) there, not several times it."""
    z = sign * torch.linspace(3.0, 9.0, 4001, dtype=torch.float32)
    x, one, zero = z.view(-1, 1, 1), torch.ones(1, 1), torch.zeros(1, 1)
    leaf = x.clone().requires_grad_()
    (ours,) = torch.autograd.grad(matnet_torch.bilinear(leaf, one, one, zero, "tanh").sum(), leaf)
    leaf = x.clone().requires_grad_()
    (torchs,) = torch.autograd.grad(torch.tanh(leaf).sum(), leaf)
    truth = 1 - torch.tanh(x.double()) ** 2
    our_error = ((ours.double() - truth).abs() / truth).max().item()
    torch_error = ((torchs.double() - truth).abs() / truth).max().item()
    assert our_error <= 1.5 * torch_error, (our_error, torch_error)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_float32_exp_over_its_whole_range(activation):
    """The float32 exp of sigmoid and tanh (exp_polynomial, csrc/activation.h) across its range and
    past it: NaN of either sign stays NaN (k is taken as 0 for NaN, never a NaN converted to int),
    ±inf and ±1e38 saturate, and the clamps (−104, 89), the underflow to subnormals (z < −87.3) and
    the overflow (z > 88.72) give what torch gives, as does a sweep of −110…95. (The forward only:
    tanh's 1 − y² near saturation is as good as y's last bit, which the test below bounds.)"""
    edges = [math.nan, -math.nan, math.inf, -math.inf, 1e38, -1e38, 103.9, -103.9, 104.1, -104.1, 88.72, 88.73,
             -87.33, -87.34, 89.5, -89.5, 150.0, -150.0, 44.36, -44.36]
    z = torch.cat([torch.linspace(-110.0, 95.0, 4101), torch.tensor(edges)]).view(-1, 1, 1)
    one, zero = torch.ones(1, 1), torch.zeros(1, 1)
    y = matnet_torch.bilinear(z, one, one, zero, activation)
    expected = torch.sigmoid(z) if activation == "sigmoid" else torch.tanh(z)
    torch.testing.assert_close(y, expected, **tolerance(torch.float32))
    assert torch.equal(y.isnan(), expected.isnan()) and y.isnan().sum() == 2
