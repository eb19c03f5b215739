"""Every bad input gets an error naming the operator, the argument and the offending values."""
import pytest
import torch

import matnet_torch
from conftest import requires_cuda


def call(x_shape=(2, 28, 28), u_shape=(20, 28), v_shape=(20, 28), bias_shape=(20, 20), dtype=torch.float32,
         u_dtype=None, activation="sigmoid", u_device="cpu"):
    x = torch.zeros(x_shape, dtype=dtype) if dtype.is_floating_point or dtype.is_complex else torch.zeros(x_shape, dtype=dtype)
    u = torch.zeros(u_shape, dtype=u_dtype or dtype, device=u_device)
    v = torch.zeros(v_shape, dtype=dtype)
    bias = torch.zeros(bias_shape, dtype=dtype) if bias_shape is not None else None
    return matnet_torch.bilinear(x, u, v, bias, activation)


ERRORS = [
    (dict(x_shape=(5,)), RuntimeError, r"matnet::bilinear: x must have at least 2 dimensions \(\.\.\., p, q\), got shape \[5\]"),
    (dict(u_shape=(20, 28, 1)), RuntimeError, r"matnet::bilinear: u must be a 2-D matrix \(m, p\), got shape \[20, 28, 1\]"),
    (dict(v_shape=(28,)), RuntimeError, r"matnet::bilinear: v must be a 2-D matrix \(n, q\), got shape \[28\]"),
    (dict(u_shape=(20, 27)), RuntimeError, r"matnet::bilinear: u.size\(1\) \(27\) must equal x.size\(-2\) \(28\)"),
    (dict(v_shape=(20, 29)), RuntimeError, r"matnet::bilinear: v.size\(1\) \(29\) must equal x.size\(-1\) \(28\)"),
    (dict(bias_shape=(20, 19)), RuntimeError, r"matnet::bilinear: bias must have shape \[m, n\] = \[20, 20\], got \[20, 19\]"),
    (dict(bias_shape=(400,)), RuntimeError, r"matnet::bilinear: bias must have shape \[m, n\] = \[20, 20\], got \[400\]"),
    (dict(u_dtype=torch.float64), RuntimeError, r"matnet::bilinear: expected u to have the dtype of x \(Float\), got Double"),
    (dict(dtype=torch.int64), RuntimeError, r"matnet::bilinear: x must be a floating-point tensor, got Long"),
    (dict(dtype=torch.complex64), RuntimeError, r"matnet::bilinear: x must be a floating-point tensor, got ComplexFloat"),
    (dict(dtype=torch.float8_e4m3fn), RuntimeError,
     r"matnet::bilinear: x has dtype Float8_e4m3fn, which has no cpu kernel \(float32, float64, bfloat16 and float16 do\)"),
    (dict(activation="softplus"), ValueError, r"matnet::bilinear: unknown activation 'softplus'; expected one of identity, sigmoid, tanh, relu"),
    (dict(u_device="meta"), RuntimeError, r"matnet::bilinear: expected x and u on the same device, got cpu and meta"),
]


@pytest.mark.parametrize("kwargs,error,message", ERRORS, ids=[e[2][19:60] for e in ERRORS])
def test_bad_input_raises_a_clear_error(kwargs, error, message):
    with pytest.raises(error, match=message):
        call(**kwargs)


def test_bias_dtype_is_checked():
    x, u, v = torch.zeros(2, 3, 4), torch.zeros(5, 3), torch.zeros(6, 4)
    with pytest.raises(RuntimeError, match=r"expected bias to have the dtype of x \(Float\), got Double"):
        matnet_torch.bilinear(x, u, v, torch.zeros(5, 6, dtype=torch.float64))


def test_backward_operator_checks_its_gradient_shape():
    x, u, v = torch.zeros(2, 3, 4), torch.zeros(5, 3), torch.zeros(6, 4)
    y = matnet_torch.bilinear(x, u, v)
    with pytest.raises(RuntimeError, match=r"matnet::bilinear_backward: grad_y must have shape \[2, 5, 6\], got \[2, 6, 5\]"):
        torch.ops.matnet.bilinear_backward(torch.zeros(2, 6, 5), x, u, v, y, "identity", [True] * 4)


@pytest.mark.skipif(matnet_torch.has_cuda_kernels(), reason="this build has CUDA kernels")
def test_cuda_tensors_on_a_build_without_cuda_kernels():
    # No CUDA tensor can exist on a CPU-only torch, so call the kernel registered at the CUDA key directly.
    x, u, v = torch.zeros(2, 3, 4), torch.zeros(5, 3), torch.zeros(6, 4)
    cuda_only = torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA)
    with pytest.raises(RuntimeError, match="matnet::bilinear: got tensors on .* but this build of matnet_torch has no CUDA kernels"):
        torch.ops.matnet.bilinear.default.redispatch(cuda_only, x, u, v, None, "identity")


@requires_cuda
def test_mixed_cpu_and_cuda_inputs():
    with pytest.raises(RuntimeError, match=r"matnet::bilinear: expected x and u on the same device, got cuda:0 and cpu"):
        matnet_torch.bilinear(torch.zeros(2, 3, 4, device="cuda"), torch.zeros(5, 3), torch.zeros(6, 4, device="cuda"))


@pytest.mark.parametrize("argument", ["x", "u", "v", "bias"])
@pytest.mark.parametrize("layout", ["sparse_coo", "sparse_csr"])
def test_sparse_tensors_get_an_error_naming_the_argument(argument, layout):
    tensors = dict(x=torch.rand(3, 4, 5), u=torch.rand(2, 4), v=torch.rand(3, 5), bias=torch.rand(2, 3))
    dense = tensors[argument]
    tensors[argument] = dense.to_sparse() if layout == "sparse_coo" else dense.to_sparse_csr()
    with pytest.raises(RuntimeError, match=rf"matnet::bilinear: {argument} has layout Sparse\w*; the operators take "
                                           rf"dense \(strided\) tensors: pass {argument}.to_dense\(\)"):
        matnet_torch.bilinear(tensors["x"], tensors["u"], tensors["v"], tensors["bias"], "sigmoid")


def test_a_sparse_input_of_multi_bilinear_is_named_by_its_index():
    x = torch.rand(3, 4, 5)
    with pytest.raises(RuntimeError, match=r"matnet::multi_bilinear: xs\[1\] has layout Sparse; .* pass xs\[1\].to_dense\(\)"):
        torch.ops.matnet.multi_bilinear([x, x.to_sparse()], [torch.rand(2, 4)] * 2, [torch.rand(3, 5)] * 2)


def test_an_output_whose_size_overflows_is_refused_before_allocating():
    x = torch.zeros(1, 1, 1).expand(2**40, 1, 1)
    with pytest.raises(RuntimeError, match=r"matnet::bilinear: the output would have shape \[1099511627776, 4096, 4096\], "
                                           r"more elements than a tensor can index"):
        matnet_torch.bilinear(x, torch.ones(2**12, 1), torch.ones(2**12, 1))


@pytest.mark.parametrize("length", [3, 5])
def test_an_output_mask_of_the_wrong_length_names_the_operator_and_argument(length):
    x, u, v = torch.rand(3, 4, 5), torch.rand(2, 4), torch.rand(3, 5)
    y = matnet_torch.bilinear(x, u, v)
    with pytest.raises(RuntimeError, match=rf"matnet::bilinear_backward: output_mask must have 4 entries "
                                           rf"\(\[dX, dU, dV, dB\]\), got {length}"):
        torch.ops.matnet.bilinear_backward(torch.ones_like(y), x, u, v, y, "identity", [True] * length)
