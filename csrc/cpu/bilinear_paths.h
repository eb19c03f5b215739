// The CPU forward and backward of the (multi-)bilinear operators, by the best path for this CPU
// and problem: the lane kernels of the CPU capability in use (capability.h) where a block of
// samples fits the per-thread scratch budget, the GEMM path (bilinear_gemm.h) everywhere else.
#pragma once

#include "bilinear_gemm.h"

namespace matnet::cpu {

// y (N, m, n) = σ(Σ_j U_j X_j V_jᵀ + bias); every tensor contiguous, bias possibly undefined.
void run_bilinear_forward(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation,
                          at::Tensor& y);

// ∂L/∂y (..., m, n) as the (N, m, n) batch run_bilinear_backward takes: contiguous, except that a
// gradient broadcast over the batch (that of y.sum() or y.mean(), every sample the same matrix) stays
// one contiguous (m, n) matrix expanded with batch stride 0, instead of being copied N times.
at::Tensor gradient_samples(const at::Tensor& grad_y, int64_t batch, int64_t m, int64_t n);

// The wanted gradients (defined, contiguous outputs) from y, contiguous (N, m, n), and grad_y from
// gradient_samples.
void run_bilinear_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                           Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias);

}  // namespace matnet::cpu
