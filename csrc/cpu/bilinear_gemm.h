// The portable CPU path of the (multi-)bilinear operators, through ATen's BLAS: each product is one
// GEMM over the flattened batch where the layout allows and a batched product otherwise (the same
// kinds of products plain PyTorch runs, arranged so the backward needs no intermediate saved by
// the forward; small outputs keep their intermediates batch-last so that every product is one
// GEMM), on chunks of the batch small enough to stay in cache, with bias and σ applied in place
// and σ' by ATen's own kernels. It runs wherever no lane kernels apply: a CPU without AVX2,
// one that is not x86-64, or matrices too large for a block of samples to stay in cache.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "../activation.h"

namespace matnet::cpu {

// Input j as contiguous tensors: x (N, p, q), u (m, p), v (n, q).
struct InputTensors {
  at::Tensor x, u, v;
};

// Where the gradients of input j go: contiguous tensors of the inputs' shapes, undefined where unwanted.
struct GradientTensors {
  at::Tensor x, u, v;
};

// y (N, m, n) = σ(Σ_j U_j X_j V_jᵀ + bias); bias may be undefined.
void gemm_forward(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation, at::Tensor& y);

// The gradients of the inputs and of the bias (if defined) from grad_y and y, both (N, m, n): y
// contiguous, grad_y contiguous or one contiguous (m, n) matrix with batch stride 0.
void gemm_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                   Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias);

}  // namespace matnet::cpu
