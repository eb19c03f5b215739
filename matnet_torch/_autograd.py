"""The operators as ``torch.autograd.Function``s, for torch.func: its transforms (grad, vjp, jacrev,
jvp, jacfwd, vmap of any of them) accept Python autograd Functions but refuse the C++ autograd of
the operators. Outside torch.func the operators' own C++ autograd runs (``functional.py`` chooses).

Backward is ``matnet::differentiable_backward`` (ATen operators with derivatives, batching and
forward-mode rules of their own), so transforms nest: ``jacfwd(jacrev(f))``, ``vmap(grad(f))``.
The tangent of Y = σ(Z), Z = Σ_j U_j X^j V_jᵀ + B, is Ẏ = σ'(Z) ⊙ Ż with
Ż = Σ_j (U̇_j X^j V_jᵀ + U_j Ẋ^j V_jᵀ + U_j X^j V̇_jᵀ) + Ḃ: one fused multi_bilinear call whose inputs are
the terms. vmap runs forward, backward and jvp under vmap (``generate_vmap_rule``), where the
operators' batching rules (``_batching.py``) apply."""
import torch

from . import _batching  # noqa: F401  (registers the batching rules)

# ẏ = σ'(z) ż from y = σ(z): the ATen backward of σ applied to a tangent (σ' acts elementwise).
_ACTIVATION_TANGENT = {
    "identity": lambda tangent, y: tangent,
    "sigmoid": torch.ops.aten.sigmoid_backward,
    "tanh": torch.ops.aten.tanh_backward,
    "relu": lambda tangent, y: torch.ops.aten.threshold_backward(tangent, y, 0),
}


def _split(tensors, inputs):
    """xs, us, vs (lists of `inputs` tensors) and bias (or None) from the flat argument list."""
    xs, us, vs = (list(tensors[k * inputs : (k + 1) * inputs]) for k in range(3))
    return xs, us, vs, tensors[3 * inputs] if len(tensors) > 3 * inputs else None


class _Family(torch.autograd.Function):
    """Y = σ(Σ_j U_j X^j V_jᵀ + B) through matnet::multi_bilinear (lists) or matnet::bilinear, the
    tensors flattened as xs…, us…, vs…, bias (autograd tracks tensors, not lists of them)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(inputs, activation, lists, *tensors):
        xs, us, vs, bias = _split(tensors, inputs)
        if lists:
            return torch.ops.matnet.multi_bilinear(xs, us, vs, bias, activation)
        return torch.ops.matnet.bilinear(xs[0], us[0], vs[0], bias, activation)

    @staticmethod
    def setup_context(ctx, arguments, output):
        inputs, activation, _, *tensors = arguments
        ctx.inputs, ctx.activation, ctx.has_bias = inputs, activation, len(tensors) > 3 * inputs
        ctx.save_for_backward(*tensors[: 3 * inputs], output)
        ctx.save_for_forward(*tensors[: 3 * inputs], output)

    @staticmethod
    def backward(ctx, grad_y):
        *tensors, y = ctx.saved_tensors
        xs, us, vs, _ = _split(tensors, ctx.inputs)
        wanted = list(ctx.needs_input_grad[3:])
        mask = wanted[: 3 * ctx.inputs] + [ctx.has_bias and wanted[-1]]
        grads = iter(torch.ops.matnet.differentiable_backward(grad_y, xs, us, vs, y, ctx.activation, mask))
        return (None, None, None, *(next(grads) if want else None for want in mask[: len(wanted)]))

    @staticmethod
    def jvp(ctx, _inputs, _activation, _lists, *tangents):
        from .functional import multi_bilinear  # the tangent's products differentiable under torch.func, too

        *tensors, y = ctx.saved_tensors
        xs, us, vs, _ = _split(tensors, ctx.inputs)
        dxs, dus, dvs, dbias = _split(tangents, ctx.inputs)
        terms = []  # (X, U, V) of each product in Ż
        for x, u, v, dx, du, dv in zip(xs, us, vs, dxs, dus, dvs):
            terms += [(a, b, c) for a, b, c, tangent in ((dx, u, v, dx), (x, du, v, du), (x, u, dv, dv)) if tangent is not None]
        if terms:
            tangent_z = multi_bilinear(*map(list, zip(*terms)), bias=dbias, activation="identity")
        else:
            tangent_z = dbias.expand_as(y)
        return _ACTIVATION_TANGENT[ctx.activation](tangent_z, y)


def bilinear(x, u, v, bias, activation):
    return _Family.apply(1, activation, False, x, u, v, *([] if bias is None else [bias]))


def multi_bilinear(xs, us, vs, bias, activation):
    return _Family.apply(len(xs), activation, True, *xs, *us, *vs, *([] if bias is None else [bias]))
