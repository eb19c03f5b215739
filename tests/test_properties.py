"""Property-based: random shapes, strides, dtypes, activations and bias against the reference."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import matnet_torch
from matnet_torch import reference
from conftest import LAYOUTS, TOLERANCES, make_layout


@st.composite
def bilinear_problems(draw):
    batch = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    p, q, m, n = (draw(st.integers(1, 7)) for _ in range(4))
    return dict(
        batch=batch, p=p, q=q, m=m, n=n,
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        activation=draw(st.sampled_from(matnet_torch.ACTIVATIONS)),
        bias=draw(st.booleans()),
        layout=draw(st.sampled_from(LAYOUTS)),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=80, deadline=None)
@given(bilinear_problems())
def test_matches_reference(problem):
    generator = torch.Generator().manual_seed(problem["seed"])
    dtype, (p, q, m, n) = problem["dtype"], (problem["p"], problem["q"], problem["m"], problem["n"])

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    x = make_layout(rand(*problem["batch"], p, q).to(dtype), problem["layout"]).requires_grad_()
    u = (rand(m, p) / p**0.5).to(dtype).requires_grad_()
    v = (rand(n, q) / q**0.5).to(dtype).requires_grad_()
    bias = rand(m, n).to(dtype).requires_grad_() if problem["bias"] else None
    leaves = [t for t in (x, u, v, bias) if t is not None]

    y = matnet_torch.bilinear(x, u, v, bias, problem["activation"])
    grad_y = torch.randn(y.shape, generator=generator, dtype=torch.float64).to(dtype)
    grads = torch.autograd.grad(y, leaves, grad_y)

    doubles = [t.detach().double().requires_grad_() for t in leaves]
    expected_y = reference.bilinear(*doubles[:3], doubles[3] if bias is not None else None, problem["activation"])
    expected_grads = torch.autograd.grad(expected_y, doubles, grad_y.double())
    torch.testing.assert_close(y.double(), expected_y, **TOLERANCES[dtype])
    for grad, expected in zip(grads, expected_grads):
        torch.testing.assert_close(grad.double(), expected, **TOLERANCES[dtype])
