// The CPU forward and backward of the (multi-)bilinear operators, by the best path for this CPU
// and problem: the lane kernels of the CPU capability in use (capability.h) where a block of
// samples fits the per-thread scratch budget, the GEMM path (bilinear_gemm.h) everywhere else.
#pragma once

#include "bilinear_gemm.h"

namespace matnet::cpu {

// y (N, m, n) = σ(Σ_j U_j X_j V_jᵀ + bias); every tensor contiguous, bias possibly undefined.
void run_bilinear_forward(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation,
                          at::Tensor& y);

// The wanted gradients (defined, contiguous outputs) from grad_y and y, both contiguous (N, m, n).
void run_bilinear_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                           Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias);

}  // namespace matnet::cpu
