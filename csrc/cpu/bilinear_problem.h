// A bilinear layer's forward and backward as raw pointers and sizes: what every CPU path (the
// per-ISA lane kernels and the portable GEMM path) works on, for D ≥ 1 inputs (docs/design.md §1, §2):
//
//     Z_i = Σ_j U_j X_i^j V_jᵀ + B,   Y_i = σ(Z_i)
//
// `bilinear` is the case D = 1. All tensors are contiguous, but for the gradient of y, whose samples
// may all be one matrix (grad_y_sample_stride 0); samples are indexed i < batch.
//
// T is the arithmetic's type (float or double); S, the storage of the per-sample matrices (X, Y,
// ∂L/∂Y, dX), is T, or a 16-bit type (c10::BFloat16, c10::Half) with T = float: the lane kernels
// widen those samples as they load them and round them once as they store them. The weights, the
// bias and the sums over samples (dU, dV, dB) are always T.
#pragma once

#include <cstdint>
#include <vector>

#include "../activation.h"
#include "../bilinear_checks.h"  // right_product_first

namespace matnet::cpu {

// Input j: X^j (batch, p, q), U_j (m, p), V_j (n, q).
template <typename T, typename S = T>
struct BilinearInput {
  const S* x;
  const T* u;
  const T* v;
  int64_t p, q;
};

template <typename T, typename S = T>
struct ForwardProblem {
  std::vector<BilinearInput<T, S>> inputs;
  const T* bias;  // (m, n) or null
  S* y;           // (batch, m, n)
  Activation activation;
  int64_t batch, m, n;
};

// Where the gradients of input j go; each pointer is null where that gradient is not wanted.
template <typename T, typename S = T>
struct InputGradients {
  S* x;  // (batch, p, q)
  T* u;  // (m, p)
  T* v;  // (n, q)
};

template <typename T, typename S = T>
struct BackwardProblem {
  const S* grad_y;               // (batch, m, n), sample i at grad_y + i·grad_y_sample_stride
  int64_t grad_y_sample_stride;  // m·n, or 0 where one gradient is broadcast to every sample
  const S* y;                    // (batch, m, n)
  std::vector<BilinearInput<T, S>> inputs;
  std::vector<InputGradients<T, S>> grads;  // one per input
  T* grad_bias;                          // (m, n) or null
  Activation activation;
  int64_t batch, m, n;
};

}  // namespace matnet::cpu
