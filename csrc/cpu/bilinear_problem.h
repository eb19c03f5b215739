// A bilinear layer's forward and backward as raw pointers and sizes: what every CPU path (the
// per-ISA lane kernels and the portable GEMM path) works on, for D ≥ 1 inputs (docs/design.md §1, §2):
//
//     Z_i = Σ_j U_j X_i^j V_jᵀ + B,   Y_i = σ(Z_i)
//
// `bilinear` is the case D = 1. All tensors are contiguous, but for the gradient of y, whose samples
// may all be one matrix (grad_y_sample_stride 0); samples are indexed i < batch.
#pragma once

#include <cstdint>
#include <vector>

#include "../activation.h"
#include "../bilinear_checks.h"  // right_product_first

namespace matnet::cpu {

// Input j: X^j (batch, p, q), U_j (m, p), V_j (n, q).
template <typename T>
struct BilinearInput {
  const T* x;
  const T* u;
  const T* v;
  int64_t p, q;
};

template <typename T>
struct ForwardProblem {
  std::vector<BilinearInput<T>> inputs;
  const T* bias;  // (m, n) or null
  T* y;           // (batch, m, n)
  Activation activation;
  int64_t batch, m, n;
};

// Where the gradients of input j go; each pointer is null where that gradient is not wanted.
template <typename T>
struct InputGradients {
  T* x;  // (batch, p, q)
  T* u;  // (m, p)
  T* v;  // (n, q)
};

template <typename T>
struct BackwardProblem {
  const T* grad_y;               // (batch, m, n), sample i at grad_y + i·grad_y_sample_stride
  int64_t grad_y_sample_stride;  // m·n, or 0 where one gradient is broadcast to every sample
  const T* y;                    // (batch, m, n)
  std::vector<BilinearInput<T>> inputs;
  std::vector<InputGradients<T>> grads;  // one per input
  T* grad_bias;                          // (m, n) or null
  Activation activation;
  int64_t batch, m, n;
};

}  // namespace matnet::cpu
