"""Shared tables for the operator tests: devices (CUDA cases skip at collection without a GPU),
dtypes per device, shapes, input layouts and tolerances."""
import math

import pytest
import torch

import matnet_torch

CUDA_AVAILABLE = torch.cuda.is_available() and matnet_torch.has_cuda_kernels()
requires_cuda = pytest.mark.skipif(not CUDA_AVAILABLE, reason="needs a CUDA GPU and a CUDA build of matnet_torch")

DEVICES = ["cpu", pytest.param("cuda", marks=requires_cuda)]
DTYPES = {
    "cpu": [torch.float32, torch.float64],
    "cuda": [torch.float32, torch.float64, torch.float16, torch.bfloat16],
}
DEVICE_DTYPES = [
    pytest.param(device, dtype, marks=[requires_cuda] if device == "cuda" else [], id=f"{device}-{str(dtype)[6:]}")
    for device in ("cpu", "cuda")
    for dtype in DTYPES[device]
]

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


def bilinear_tolerances(dtype, x, u, v, grad_y):
    """assert_close tolerances for y, dX, dU, dV and dB of bilinear(x, u, v, bias) with output gradient grad_y."""
    if dtype in TOLERANCES:
        return [TOLERANCES[dtype]] * 5
    batch, (p, q), m, n = math.prod(x.shape[:-2]), x.shape[-2:], u.shape[0], v.shape[0]
    # The gradients' terms hold Δ = G ⊙ σ'(Y), no larger than G (σ' ≤ 1 for every activation).
    g, su, sv, sx = _rms(grad_y), _rms(u), _rms(v), _rms(x)
    # (K, term_scale) of Y = Σ U X Vᵀ, dX = Σ Uᵀ Δ V, dU = Σ Δ V Xᵀ, dV = Σ Δᵀ U X, dB = Σ Δ.
    terms = [(p * q, su * sx * sv), (m * n, g * su * sv), (batch * n * q, g * sv * sx), (batch * m * p, g * su * sx), (batch, g)]
    return [rounded_once_tolerance(dtype, length, scale) for length, scale in terms]


# σ'(z) written through y = σ(z) (design.md §1): the backward takes it from the saved output.
DERIVATIVE_FROM_OUTPUT = {
    "identity": torch.ones_like,
    "sigmoid": lambda y: y * (1 - y),
    "tanh": lambda y: 1 - y * y,
    "relu": lambda y: (y > 0).to(y.dtype),
}


def gradients_from_saved_output(inputs, activation, grad_y, saved_y):
    """The gradients of x, u, v (and bias, if given) that bilinear's backward must return from its saved
    output: Δ = G ⊙ σ'(saved_y), then the exact backward of Z = U X Vᵀ + B, all in float64. For float16
    and bfloat16 the saved output is rounded; the exact gradients would differ from these by that
    rounding carried through σ', which is no error of the backward."""
    from matnet_torch import reference

    leaves = [t.detach().double().cpu().requires_grad_() for t in inputs if t is not None]
    z = reference.bilinear(*leaves, activation="identity")
    delta = grad_y.double().cpu() * DERIVATIVE_FROM_OUTPUT[activation](saved_y.detach().double().cpu())
    return torch.autograd.grad(z, leaves, delta)


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
