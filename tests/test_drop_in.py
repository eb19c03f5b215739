"""What users do with any layer, done with matnet_torch.bilinear, multi_bilinear and
MatNetClassifier and compared with plain PyTorch (matnet_torch.reference) on the same inputs:
second derivatives (gradgradcheck, Hessian-vector products) and the torch.func transforms (grad,
vjp, jacrev, jvp, jacfwd, hessian, per-sample gradients vmap(grad), ensembles vmap over stacked
parameters)."""
import copy

import pytest
import torch
from torch import func

import matnet_torch
from matnet_torch import reference
from matnet_torch.nn import MatNetClassifier
from conftest import LAYOUTS, assert_float32_arithmetic_rounded_once, make_inputs, make_layout

pytestmark = pytest.mark.usefixtures("cpu_kernels")

F64 = dict(rtol=1e-9, atol=1e-9)  # float64 against float64: only the order of the sums differs
MULTI_SHAPES = [((3, 4, 5), (3, 2, 3)), (3, 2)]  # xs[j] shapes (leading dims (3,)), then (m, n)


def multi_inputs(bias=True, seed=0, leading=(3,)):
    """Two inputs of different sizes: (xs, us, vs, bias) in float64."""
    generator = torch.Generator().manual_seed(seed)
    (p0, q0), (p1, q1), (m, n) = (4, 5), (2, 3), (3, 2)
    rand = lambda *s, scale=1.0: torch.randn(*s, generator=generator, dtype=torch.float64) * scale  # noqa: E731
    xs = [rand(*leading, p0, q0), rand(*leading, p1, q1)]
    us = [rand(m, p0, scale=p0**-0.5), rand(m, p1, scale=p1**-0.5)]
    vs = [rand(n, q0, scale=q0**-0.5), rand(n, q1, scale=q1**-0.5)]
    return xs, us, vs, rand(m, n) if bias else None


def bilinear_of(implementation, activation):
    return lambda x, u, v, *bias: implementation.bilinear(x, u, v, *bias, activation=activation)


def multi_of(implementation, activation):
    """multi_bilinear over the flat arguments (x0, x1, u0, u1, v0, v1[, bias])."""
    return lambda x0, x1, u0, u1, v0, v1, *bias: implementation.multi_bilinear(
        [x0, x1], [u0, u1], [v0, v1], *bias, activation=activation)


def leaves(tensors):
    return [t.detach().clone().requires_grad_() for t in tensors if t is not None]


# ---- second derivatives ---------------------------------------------------------------------

@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("x_shape", [(3, 4, 5), (2, 2, 3, 2), (4, 3)], ids=["batch", "leading-dims", "no-batch"])
def test_gradgradcheck_bilinear(activation, bias, x_shape):
    inputs = leaves(make_inputs(x_shape, (3, 2), torch.float64, "cpu", bias))
    assert torch.autograd.gradgradcheck(bilinear_of(matnet_torch, activation), inputs)


# gradcheck perturbs inputs elementwise, so not an expanded (overlapping) one.
@pytest.mark.parametrize("layout", [layout for layout in LAYOUTS if layout != "expanded"])
def test_gradgradcheck_bilinear_any_strides(layout):
    x, u, v, bias = make_inputs((6, 5, 7), (4, 3), torch.float64, "cpu")
    inputs = [make_layout(x, layout).detach().requires_grad_(), u.T.contiguous().T.requires_grad_(),
              v.requires_grad_(), bias.requires_grad_()]
    assert torch.autograd.gradgradcheck(bilinear_of(matnet_torch, "sigmoid"), inputs)


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("leading", [(3,), ()], ids=["batch", "no-batch"])
def test_gradgradcheck_multi_bilinear(activation, bias, leading):
    xs, us, vs, b = multi_inputs(bias, leading=leading)
    assert torch.autograd.gradgradcheck(multi_of(matnet_torch, activation), leaves([*xs, *us, *vs, b]))


@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_hessian_vector_product_matches_plain_pytorch(activation):
    inputs = make_inputs((5, 4, 6), (3, 2), torch.float64, "cpu")
    directions = [torch.randn_like(t) for t in inputs]

    def hvp(implementation):
        params = leaves(inputs)
        loss = bilinear_of(implementation, activation)(*params).pow(3).sum()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        return torch.autograd.grad(sum((g * d).sum() for g, d in zip(grads, directions)), params)

    for ours, plain in zip(hvp(matnet_torch), hvp(reference)):
        torch.testing.assert_close(ours, plain, **F64)


@pytest.mark.parametrize("route", ["autograd", "torch.func"])
def test_third_derivative_matches_plain_pytorch(route):
    """d³/ds³ of Σ σ(s·U X Vᵀ)³: the differentiable backward is itself differentiable again."""
    x, u, v, _ = make_inputs((3, 4, 5), (2, 3), torch.float64, "cpu")

    def third(implementation):
        loss = lambda s: implementation.bilinear(x, u * s, v, None, "sigmoid").pow(3).sum()  # noqa: E731
        s = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        if route == "torch.func":
            return func.grad(func.grad(func.grad(loss)))(s)
        (first,) = torch.autograd.grad(loss(s), s, create_graph=True)
        (second,) = torch.autograd.grad(first, s, create_graph=True)
        return torch.autograd.grad(second, s)[0]

    torch.testing.assert_close(third(matnet_torch), third(reference), **F64)


def test_gradient_penalty_trains_like_plain_pytorch():
    """WGAN-GP's penalty (‖∂D/∂x‖ − 1)², differentiated in the weights: a second derivative."""
    inputs = make_inputs((8, 4, 6), (3, 2), torch.float64, "cpu")

    def penalty_grads(implementation):
        x, u, v, bias = leaves(inputs)
        (grad_x,) = torch.autograd.grad(implementation.bilinear(x, u, v, bias, "tanh").sum(), x, create_graph=True)
        penalty = (grad_x.flatten(1).norm(dim=1) - 1).square().mean()
        return torch.autograd.grad(penalty, (u, v, bias))

    for ours, plain in zip(penalty_grads(matnet_torch), penalty_grads(reference)):
        torch.testing.assert_close(ours, plain, **F64)


def test_backward_operator_called_directly_refuses_double_backward_clearly():
    x, u, v, _ = leaves(make_inputs((3, 4, 5), (3, 2), torch.float64, "cpu"))
    y = matnet_torch.bilinear(x, u, v, None, "tanh").detach()
    grad_y = torch.ones_like(y, requires_grad=True)
    grad_x, *_ = torch.ops.matnet.bilinear_backward(grad_y, x, u, v, y, "tanh", [True, False, False, False])
    with pytest.raises(RuntimeError, match="matnet::bilinear_backward: double backward .* differentiate matnet::bilinear"):
        grad_x.sum().backward()


def test_plain_calls_keep_the_cpp_autograd():
    """Outside torch.func the operators' C++ autograd records the graph (no Python autograd.Function
    on the first-order path: benchmarks/bench_bilinear.py's ratios stay those of the fused backward)."""
    x, u, v, bias = leaves(make_inputs((3, 4, 5), (2, 3), torch.float64, "cpu"))
    assert type(matnet_torch.bilinear(x, u, v, bias, "tanh").grad_fn).__name__ == "CppFunction"
    assert type(matnet_torch.multi_bilinear([x], [u], [v], bias, "tanh").grad_fn).__name__ == "CppFunction"


def test_dual_tensors_outside_torch_func_get_a_clear_error():
    import torch.autograd.forward_ad as forward_ad

    x, u, v, _ = make_inputs((3, 4, 5), (2, 3), torch.float64, "cpu")
    with forward_ad.dual_level():
        dual_u = forward_ad.make_dual(u, torch.ones_like(u))
        with pytest.raises(RuntimeError, match="matnet::bilinear: forward-mode AD .* use torch.func.jvp or torch.func.jacfwd"):
            matnet_torch.bilinear(x, dual_u, v, None, "tanh")


# ---- torch.func -----------------------------------------------------------------------------

def loss_of(forward):
    return lambda *tensors: forward(*tensors).pow(2).sum()


CASES = {
    "bilinear": (lambda: make_inputs((5, 4, 6), (3, 2), torch.float64, "cpu"), bilinear_of),
    "multi_bilinear": (lambda: [t for group in multi_inputs() for t in (group if isinstance(group, list) else [group])],
                       multi_of),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("transform", ["grad", "vjp", "jacrev", "jvp", "jacfwd", "hessian"])
def test_func_transform_matches_plain_pytorch(case, activation, transform):
    make, of = CASES[case]
    inputs = [t for t in make() if t is not None]
    argnums = tuple(range(len(inputs)))

    def run(implementation):
        forward = of(implementation, activation)
        if transform == "grad":
            return func.grad(loss_of(forward), argnums=argnums)(*inputs)
        if transform == "vjp":
            y, pullback = func.vjp(forward, *inputs)
            return (y, *pullback(torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)))
        if transform == "jvp":
            tangents = tuple(torch.linspace(-1, 1, t.numel(), dtype=t.dtype).view_as(t) for t in inputs)
            return func.jvp(forward, tuple(inputs), tangents)
        if transform == "hessian":  # jacfwd(jacrev): forward mode over reverse mode
            return func.hessian(loss_of(forward), argnums=(1, 2))(*inputs)
        return getattr(func, transform)(forward, argnums=argnums)(*inputs)

    torch.testing.assert_close(run(matnet_torch), run(reference), **F64)


@pytest.mark.parametrize("case", CASES)
def test_per_sample_gradients_vmap_grad(case):
    make, of = CASES[case]
    inputs = [t for t in make() if t is not None]
    batched = 2 if case == "multi_bilinear" else 1  # the x inputs come first
    in_dims = (0,) * batched + (None,) * (len(inputs) - batched)
    weights = tuple(range(batched, len(inputs)))

    def run(implementation):
        per_sample_loss = lambda *t: loss_of(of(implementation, "sigmoid"))(*(a.unsqueeze(0) if k < batched else a
                                                                              for k, a in enumerate(t)))
        return func.vmap(func.grad(per_sample_loss, argnums=weights), in_dims=in_dims)(*inputs)

    ours, plain = run(matnet_torch), run(reference)
    assert ours[0].shape[0] == inputs[0].shape[0]
    torch.testing.assert_close(ours, plain, **F64)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("batched", ["weights", "weights-and-x"])
def test_vmap_over_stacked_weights(case, batched):
    """An ensemble: weights (and possibly inputs) with a leading model dimension."""
    make, of = CASES[case]
    inputs = [t for t in make() if t is not None]
    members = [[t * (1 + 0.1 * k) for t in inputs] for k in range(3)]
    stacked = [torch.stack(ts) for ts in zip(*members)]
    xs = 2 if case == "multi_bilinear" else 1
    in_dims = tuple(0 if batched == "weights-and-x" or k >= xs else None for k in range(len(inputs)))
    stacked = [s if d == 0 else inputs[k] for k, (s, d) in enumerate(zip(stacked, in_dims))]
    ours = func.vmap(of(matnet_torch, "tanh"), in_dims=in_dims)(*stacked)
    plain = func.vmap(of(reference, "tanh"), in_dims=in_dims)(*stacked)
    torch.testing.assert_close(ours, plain, **F64)
    grads = func.grad(lambda *t: loss_of(func.vmap(of(matnet_torch, "tanh"), in_dims=in_dims))(*t),
                      argnums=tuple(range(len(stacked))))(*stacked)
    expected = func.grad(lambda *t: loss_of(func.vmap(of(reference, "tanh"), in_dims=in_dims))(*t),
                         argnums=tuple(range(len(stacked))))(*stacked)
    torch.testing.assert_close(grads, expected, **F64)


def classifier_pair():
    model = MatNetClassifier(dtype=torch.float64)
    return model, torch.rand(6, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def with_reference_layers(monkeypatch):
    """MatNetClassifier computed by plain PyTorch: its layers' functional calls sent to the reference."""
    monkeypatch.setattr(matnet_torch.functional, "bilinear", reference.bilinear)
    monkeypatch.setattr(matnet_torch.functional, "multi_bilinear", reference.multi_bilinear)


def per_sample_gradient_norms(model, x, labels):
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(params, x, label):
        logits = func.functional_call(model, params, (x.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(logits, label.unsqueeze(0))

    grads = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, x, labels)
    return torch.stack([g.flatten(1).norm(dim=1) for g in grads.values()]).norm(dim=0)


def test_classifier_per_sample_gradient_norms(monkeypatch):
    model, x = classifier_pair()
    labels = torch.arange(6) % 10
    ours = per_sample_gradient_norms(model, x, labels)
    with_reference_layers(monkeypatch)
    torch.testing.assert_close(ours, per_sample_gradient_norms(model, x, labels), **F64)


def test_classifier_ensemble_with_stack_module_state(monkeypatch):
    model, x = classifier_pair()
    models = [model] + [copy.deepcopy(model) for _ in range(2)]
    for k, member in enumerate(models[1:], start=1):
        with torch.no_grad():
            for p in member.parameters():
                p.mul_(1 + 0.1 * k)
    params, buffers = func.stack_module_state(models)

    def ensemble_loss(params):
        logits = func.vmap(lambda p, b: func.functional_call(model, (p, b), (x,)), in_dims=(0, 0))(params, buffers)
        return logits.square().sum()

    ours = func.grad(ensemble_loss)(params)
    with_reference_layers(monkeypatch)
    plain = func.grad(ensemble_loss)(params)
    torch.testing.assert_close(ours, plain, **F64)


# ---- bfloat16 and float16 on the CPU --------------------------------------------------------

SIXTEEN_BIT = [torch.bfloat16, torch.float16]
# Lane kernels (full and partial blocks of samples, a partial register tile), and matrices too large
# for a block of samples to stay in cache, which take the GEMM path.
SIXTEEN_BIT_SHAPES = [((37, 28, 28), (20, 20)), ((5, 3, 7), (4, 3)), ((2, 260, 250), (6, 5))]


@pytest.mark.parametrize("dtype", SIXTEEN_BIT, ids=str)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("x_shape,out_shape", SIXTEEN_BIT_SHAPES, ids=["mnist", "small", "large"])
def test_sixteen_bit_cpu_is_float32_rounded_once(dtype, activation, x_shape, out_shape):
    """Forward and backward in 16 bits give the float32 kernels' results on the same (widened)
    inputs, each rounded once to 16 bits: bit for bit, as no intermediate is rounded. (bfloat16 on
    AMX tiles sums in another order: within float32 rounding instead, tests/test_amx.py.)"""
    x, u, v, bias = (t.to(torch.float32).to(dtype) for t in make_inputs(x_shape, out_shape, torch.float64, "cpu"))
    y = torch.ops.matnet.bilinear(x, u, v, bias, activation)
    grad_y = torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    grads = torch.ops.matnet.bilinear_backward(grad_y, x, u, v, y, activation, [True] * 4)
    assert y.dtype == dtype and all(grad.dtype == dtype for grad in grads)
    if matnet_torch.cpu_capability() == "amx" and dtype == torch.bfloat16:
        assert_float32_arithmetic_rounded_once((x, u, v, bias), activation, y, grad_y, grads)
        return
    assert torch.equal(y, torch.ops.matnet.bilinear(*(t.float() for t in (x, u, v, bias)), activation).to(dtype))
    wide = torch.ops.matnet.bilinear_backward(*(t.float() for t in (grad_y, x, u, v, y)), activation, [True] * 4)
    for grad, expected in zip(grads, wide):
        assert torch.equal(grad, expected.to(dtype))


@pytest.mark.parametrize("dtype", SIXTEEN_BIT, ids=str)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_sixteen_bit_cpu_special_values_are_float32_rounded_once(dtype, activation):
    """NaN, ±inf, the largest values and subnormals in x: the same values (NaN where NaN; its bits
    may differ, a NaN is a NaN) as the float32 kernels rounded once."""
    x, u, v, bias = make_inputs((37, 5, 6), (4, 3), torch.float64, "cpu")
    x[0, 0, 0], x[3, 1, 1], x[5, 2, 2], x[9, 0, 0] = float("nan"), float("inf"), -float("inf"), 1e-40
    x[7] = torch.finfo(dtype).max
    x, u, v, bias = (t.float().to(dtype) for t in (x, u, v, bias))
    y = torch.ops.matnet.bilinear(x, u, v, bias, activation)
    expected = torch.ops.matnet.bilinear(*(t.float() for t in (x, u, v, bias)), activation).to(dtype)
    assert y.isnan().any() and torch.equal(y.isnan(), expected.isnan())
    assert torch.equal(y[~y.isnan()], expected[~expected.isnan()])


@pytest.mark.parametrize("dtype", SIXTEEN_BIT, ids=str)
def test_sixteen_bit_cpu_multi_bilinear_is_float32_rounded_once(dtype):
    xs, us, vs, bias = ([t.float().to(dtype) for t in group] if isinstance(group, list) else group.float().to(dtype)
                        for group in multi_inputs(leading=(19,)))
    y = torch.ops.matnet.multi_bilinear(xs, us, vs, bias, "sigmoid")
    widen = lambda ts: [t.float() for t in ts]  # noqa: E731
    assert torch.equal(y, torch.ops.matnet.multi_bilinear(widen(xs), widen(us), widen(vs), bias.float(), "sigmoid").to(dtype))
    grad_y = torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    mask = [True] * (3 * len(xs) + 1)
    grads = torch.ops.matnet.multi_bilinear_backward(grad_y, xs, us, vs, y, "sigmoid", mask)
    wide = torch.ops.matnet.multi_bilinear_backward(grad_y.float(), widen(xs), widen(us), widen(vs), y.float(), "sigmoid", mask)
    for grad, expected in zip(grads, wide):
        assert grad.dtype == dtype and torch.equal(grad, expected.to(dtype))


@pytest.mark.parametrize("dtype", SIXTEEN_BIT, ids=str)
def test_classifier_trains_in_sixteen_bits(dtype):
    """model.bfloat16() / model.half(): a training step in 16 bits, against the float32 model."""
    torch.manual_seed(0)
    model = MatNetClassifier()
    low = copy.deepcopy(model).to(dtype)
    x, labels = torch.rand(16, 28, 28), torch.arange(16) % 10
    losses = []
    for net, inputs in ((model, x), (low, x.to(dtype))):
        loss = torch.nn.functional.cross_entropy(net(inputs).float(), labels)
        loss.backward()
        losses.append(loss)
    assert all(p.grad.dtype == dtype for p in low.parameters())
    # Every weight, input and layer output is rounded to 16 bits (relative error eps/2 each); the
    # loss (≈ ln 10) averages those errors away: measured ≤ 0.02 eps over 5 seeds, asserted ≤ 1 eps.
    # The per-layer arithmetic itself is exact to one rounding (the tests above); here, that training
    # sees the same gradient direction (cosine similarity measured ≥ 0.99995, asserted > 0.999).
    torch.testing.assert_close(losses[1], losses[0], rtol=torch.finfo(dtype).eps, atol=0)
    for ours, wide in zip(low.parameters(), model.parameters()):
        assert torch.nn.functional.cosine_similarity(ours.grad.float().flatten(), wide.grad.flatten(), dim=0) > 0.999


# ---- dispatcher citizenship of what this adds ------------------------------------------------

@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
def test_opcheck_differentiable_backward(activation):
    xs, us, vs, bias = multi_inputs()
    y = torch.ops.matnet.multi_bilinear(xs, us, vs, bias, activation)
    mask = [True, False, True, True, False, True, True]
    grads = torch.ops.matnet.differentiable_backward(torch.ones_like(y), xs, us, vs, y, activation, mask)
    assert len(grads) == sum(mask)
    torch.library.opcheck(torch.ops.matnet.differentiable_backward.default,
                          (torch.randn_like(y), xs, us, vs, y, activation, mask))


@pytest.mark.parametrize("dtype", SIXTEEN_BIT, ids=str)
def test_opcheck_sixteen_bit_cpu(dtype):
    x, u, v, bias = (t.to(dtype) for t in make_inputs((5, 4, 6), (3, 2), torch.float64, "cpu"))
    torch.library.opcheck(torch.ops.matnet.bilinear.default, (x, u.requires_grad_(), v, bias, "tanh"))
    u = u.detach()
    y = torch.ops.matnet.bilinear(x, u, v, bias, "tanh")
    torch.library.opcheck(torch.ops.matnet.bilinear_backward.default,
                          (torch.ones_like(y), x, u, v, y, "tanh", [True, True, True, True]))
