"""Batching rules of the operators for torch.vmap (``torch.library.register_vmap``). A batch of x
is one more leading dimension of x, which the operators take as it is: one fused call. Batched
weights (an ensemble: ``torch.func.stack_module_state``) give one fused call per member."""
import torch

from . import _library  # noqa: F401  (registers torch.ops.matnet)


def _at(tensor, dim, k):
    """Member k of a batched argument; an unbatched one (dim None) as it is."""
    return tensor if dim is None else tensor.select(dim, k)


def _per_member(op, info, in_dims, arguments, activation):
    """op on each member of the batch, stacked: for batched weights or bias. arguments: (x, u, v,
    bias) or (xs, us, vs, bias), in_dims the same shape."""
    def member(k):
        return op(*(
            [_at(t, d, k) for t, d in zip(a, dims)] if isinstance(a, (list, tuple)) else _at(a, dims, k)
            for a, dims in zip(arguments, in_dims)
        ), activation)
    return torch.stack([member(k) for k in range(info.batch_size)]), 0


def _leading(x, dim, size):
    """x with its batch dimension first (an unbatched x repeated as a view)."""
    return x.expand(size, *x.shape) if dim is None else x.movedim(dim, 0)


@torch.library.register_vmap("matnet::bilinear")
def _bilinear_rule(info, in_dims, x, u, v, bias=None, activation="identity"):  # defaults as the schema's
    in_dims = (*in_dims, None)[:4]  # bias's entry (None) where the call left bias out
    if in_dims[1:4] == (None, None, None):
        return torch.ops.matnet.bilinear(_leading(x, in_dims[0], info.batch_size), u, v, bias, activation), 0
    return _per_member(torch.ops.matnet.bilinear, info, in_dims, (x, u, v, bias), activation)


@torch.library.register_vmap("matnet::multi_bilinear")
def _multi_bilinear_rule(info, in_dims, xs, us, vs, bias=None, activation="identity"):
    in_dims = (*in_dims, None)[:4]
    x_dims, u_dims, v_dims = (dims or [None] * len(xs) for dims in in_dims[:3])
    if all(d is None for d in (*u_dims, *v_dims, in_dims[3])):
        xs = [_leading(x, d, info.batch_size) for x, d in zip(xs, x_dims)]
        return torch.ops.matnet.multi_bilinear(xs, us, vs, bias, activation), 0
    in_dims = (x_dims, u_dims, v_dims, *in_dims[3:])
    return _per_member(torch.ops.matnet.multi_bilinear, info, in_dims, (xs, us, vs, bias), activation)
