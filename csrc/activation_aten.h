// σ and its backward on whole tensors through ATen's own kernels (torch's exact special values),
// for the code paths built from ATen operations: the CPU GEMM path and the CUDA multi-input kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include "activation.h"

namespace matnet {

// y = σ(y) in place.
void activate_(at::Tensor& y, Activation activation);

// ∂L/∂z from grad_y = ∂L/∂y and y = σ(z): sigmoid_backward, tanh_backward, threshold_backward;
// contiguous whatever grad_y's layout (for the identity, grad_y itself where it is contiguous).
at::Tensor activation_grad(const at::Tensor& grad_y, const at::Tensor& y, Activation activation);

// The same as a differentiable function of grad_y and y (ATen's sigmoid_backward, tanh_backward and
// threshold_backward have derivatives of their own), for the differentiable backward. Applied to a
// tangent ż instead of grad_y it gives the tangent ẏ = σ'(z) ż, since σ'(z) is elementwise.
at::Tensor activation_backward(const at::Tensor& grad_y, const at::Tensor& y, Activation activation);

// The same written into `out`, whose layout may differ from grad_y's (a permutation of it, say).
void activation_grad_out(at::Tensor& out, const at::Tensor& grad_y, const at::Tensor& y, Activation activation);

}  // namespace matnet
