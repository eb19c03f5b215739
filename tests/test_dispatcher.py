"""Dispatcher citizenship: torch.library.opcheck on every operator, torch.compile(fullgraph=True)
forward and backward against eager (static and dynamic shapes), and the fake kernels' errors."""
import pytest
import torch

import matnet_torch
from conftest import DEVICES

OPCHECK_SHAPES = [((4, 3, 5), (2, 6)), ((0, 3, 4), (2, 5)), ((2, 3, 4, 5), (6, 7)), ((1, 1), (1, 1))]


def make_inputs(x_shape, out_shape, device, requires_grad=True, bias=True):
    p, q = x_shape[-2:]
    m, n = out_shape
    tensors = [torch.randn(*x_shape), torch.randn(m, p) / p**0.5, torch.randn(n, q) / q**0.5]
    tensors.append(torch.randn(m, n) if bias else None)
    return [t.to(device, torch.float64).requires_grad_(requires_grad) if t is not None else None for t in tensors]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("x_shape,out_shape", OPCHECK_SHAPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_opcheck_bilinear(device, activation, x_shape, out_shape, bias):
    x, u, v, b = make_inputs(x_shape, out_shape, device, bias=bias)
    torch.library.opcheck(torch.ops.matnet.bilinear.default, (x, u, v, b, activation))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", matnet_torch.ACTIVATIONS)
@pytest.mark.parametrize("mask", [[True] * 4, [True, False, True, False], [False, True, False, True]], ids=str)
def test_opcheck_bilinear_backward(device, activation, mask):
    x, u, v, _ = make_inputs((4, 3, 5), (2, 6), device, requires_grad=False)
    y = torch.ops.matnet.bilinear(x, u, v, None, activation)
    grad_y = torch.randn_like(y)
    torch.library.opcheck(torch.ops.matnet.bilinear_backward.default, (grad_y, x, u, v, y, activation, mask))


def test_backward_mask_leaves_unrequested_gradients_undefined():
    x, u, v, _ = make_inputs((4, 3, 5), (2, 6), "cpu", requires_grad=False)
    y = torch.ops.matnet.bilinear(x, u, v, None, "tanh")
    grads = torch.ops.matnet.bilinear_backward(torch.ones_like(y), x, u, v, y, "tanh", [True, False, True, False])
    assert grads[1] is None and grads[3] is None
    assert grads[0].shape == x.shape and grads[2].shape == v.shape


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.first = matnet_torch.nn.MatNetLayer((6, 5), (4, 3), activation="sigmoid")
        self.second = matnet_torch.nn.MatNetLayer((4, 3), (2, 2), activation="tanh", bias=False)

    def forward(self, x):
        return self.second(self.first(x))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_compile_fullgraph_matches_eager(device, dynamic):
    torch._dynamo.reset()
    model = TwoLayers().to(device, torch.float64)
    compiled = torch.compile(model, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for batch in (7, 3):  # a second batch size exercises the dynamic shape (or a recompile)
        x = torch.randn(batch, 6, 5, dtype=torch.float64, device=device, requires_grad=True)
        eager_y = model(x)
        eager_grads = torch.autograd.grad(eager_y.square().sum(), [x, *model.parameters()])
        compiled_y = compiled(x)
        compiled_grads = torch.autograd.grad(compiled_y.square().sum(), [x, *model.parameters()])
        torch.testing.assert_close(compiled_y, eager_y)
        for compiled_grad, eager_grad in zip(compiled_grads, eager_grads):
            torch.testing.assert_close(compiled_grad, eager_grad)


def test_compile_with_inductor_matches_eager():
    torch._dynamo.reset()
    model = TwoLayers().double()
    compiled = torch.compile(model, fullgraph=True)
    x = torch.randn(5, 6, 5, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(compiled(x), model(x))
    (compiled_grad,) = torch.autograd.grad(compiled(x).sum(), x)
    (eager_grad,) = torch.autograd.grad(model(x).sum(), x)
    torch.testing.assert_close(compiled_grad, eager_grad)


def test_fake_kernels_raise_the_same_errors_under_compile():
    torch._dynamo.reset()

    @torch.compile(fullgraph=True, backend="aot_eager")
    def apply(x, u, v):
        return matnet_torch.bilinear(x, u, v, None, "sigmoid")

    with pytest.raises(Exception, match=r"matnet::bilinear: u.size\(1\) \(27\) must equal x.size\(-2\) \(28\)"):
        apply(torch.randn(2, 28, 28), torch.randn(20, 27), torch.randn(20, 28))
    torch._dynamo.reset()
    with pytest.raises(Exception, match="matnet::bilinear: unknown activation 'swish'"):
        torch.compile(lambda x, u, v: matnet_torch.bilinear(x, u, v, None, "swish"), fullgraph=True, backend="aot_eager")(
            torch.randn(2, 3, 3), torch.randn(2, 3), torch.randn(2, 3)
        )
