#include "bilinear_blocks.h"

#include <algorithm>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MATNET_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MATNET_VECTOR_CLONES
#endif

namespace matnet::cpu {
namespace {

// σ over `size` scalars in place. A switch, not dispatch_activation's lambda: a lambda is a
// function of its own, compiled for the baseline target instead of the clone's.
template <typename T>
MATNET_ALWAYS_INLINE void activate_in_place(Activation activation, T* values, int64_t size) {
  switch (activation) {
    case Activation::Sigmoid:
      for (int64_t k = 0; k < size; ++k) values[k] = activate<Activation::Sigmoid>(values[k]);
      break;
    case Activation::Tanh:
      for (int64_t k = 0; k < size; ++k) values[k] = activate<Activation::Tanh>(values[k]);
      break;
    case Activation::Relu:
      for (int64_t k = 0; k < size; ++k) values[k] = activate<Activation::Relu>(values[k]);
      break;
    case Activation::Identity:
      break;
  }
}

// grad[k] = grad[k] · σ'(y[k]) in place, σ' written through y.
template <typename T>
MATNET_ALWAYS_INLINE void multiply_by_derivative(Activation activation, T* grad, const T* y, int64_t size) {
  switch (activation) {
    case Activation::Sigmoid:
      for (int64_t k = 0; k < size; ++k) grad[k] *= activation_derivative_from_output<Activation::Sigmoid>(y[k]);
      break;
    case Activation::Tanh:
      for (int64_t k = 0; k < size; ++k) grad[k] *= activation_derivative_from_output<Activation::Tanh>(y[k]);
      break;
    case Activation::Relu:
      for (int64_t k = 0; k < size; ++k) grad[k] *= activation_derivative_from_output<Activation::Relu>(y[k]);
      break;
    case Activation::Identity:
      break;
  }
}

template <typename T>
MATNET_ALWAYS_INLINE void forward_blocks_impl(const ForwardProblem<T>& problem, int64_t first_block,
                                              int64_t last_block, Lanes<T>* scratch) {
  const auto [batch, m, n, p, q] = problem.sizes;
  Lanes<T>* xs = scratch;                             // X_i       (p, q)
  Lanes<T>* middle = xs + p * q;                      // T_i or W_i
  Lanes<T>* zs = middle + std::max(p * n, m * q);     // Z_i, Y_i  (m, n)
  const bool use_right_first = problem.sizes.right_product_first();
  for (int64_t block = first_block; block < last_block; ++block) {
    const int64_t first = block * kBlockSamples<T>, count = std::min(kBlockSamples<T>, batch - first);
    samples_to_lanes(problem.x + first * p * q, count, p * q, xs);
    if (use_right_first) {
      // T_i = X_i Vᵀ, as T_iᵀ(j, r) = Σ_c V(j, c) X_i(r, c); stored (p, n).
      scalar_times_lanes<T>(n, p, q, problem.v, {q, 1}, xs, {1, q}, middle, {1, n});
      // Z_i(a, j) = Σ_r U(a, r) T_i(r, j).
      scalar_times_lanes<T>(m, n, p, problem.u, {p, 1}, middle, {n, 1}, zs, {n, 1});
    } else {
      // W_i(a, c) = Σ_r U(a, r) X_i(r, c); stored (m, q).
      scalar_times_lanes<T>(m, q, p, problem.u, {p, 1}, xs, {q, 1}, middle, {q, 1});
      // Z_i = W_i Vᵀ, as Z_iᵀ(j, a) = Σ_c V(j, c) W_i(a, c).
      scalar_times_lanes<T>(n, m, q, problem.v, {q, 1}, middle, {1, q}, zs, {1, n});
    }
    if (problem.bias != nullptr)
      for (int64_t k = 0; k < m * n; ++k) zs[k] += problem.bias[k];
    activate_in_place(problem.activation, reinterpret_cast<T*>(zs), m * n * kLanes<T>);
    lanes_to_samples(zs, count, m * n, problem.y + first * m * n);
  }
}

// dX_i = Uᵀ Δ_i V, dU = Σ_i Δ_i V X_iᵀ, dV = Σ_i Δ_iᵀ U X_i, dB = Σ_i Δ_i (design.md §1), through
// P_i = Δ_i V and R_i = Uᵀ Δ_i:  dX_i = R_i V,  dU = Σ_i P_i X_iᵀ,  dV = Σ_i R_iᵀ X_i.
template <typename T>
MATNET_ALWAYS_INLINE void backward_blocks_impl(const BackwardProblem<T>& problem, int64_t first_block,
                                               int64_t last_block, Lanes<T>* scratch, const LaneSums<T>& sums) {
  const auto [batch, m, n, p, q] = problem.sizes;
  const auto [need_x, need_u, need_v, need_bias] = problem.mask;
  Lanes<T>* delta = scratch;        // G_i, then Δ_i  (m, n)
  Lanes<T>* ys = delta + m * n;     // Y_i            (m, n)
  Lanes<T>* xs = ys + m * n;        // X_i            (p, q)
  Lanes<T>* ps = xs + p * q;        // P_i            (m, q)
  Lanes<T>* rs = ps + m * q;        // R_i            (p, n)
  Lanes<T>* dxs = rs + p * n;       // dX_i           (p, q)
  for (int64_t block = first_block; block < last_block; ++block) {
    const int64_t first = block * kBlockSamples<T>, count = std::min(kBlockSamples<T>, batch - first);
    // Δ_i = G_i ⊙ σ'(Y_i); the padding lanes have G = 0, so Δ = 0 there and they add nothing.
    samples_to_lanes(problem.grad_y + first * m * n, count, m * n, delta);
    if (problem.activation != Activation::Identity) {
      samples_to_lanes(problem.y + first * m * n, count, m * n, ys);
      multiply_by_derivative(problem.activation, reinterpret_cast<T*>(delta), reinterpret_cast<const T*>(ys),
                             m * n * kLanes<T>);
    }
    if (need_bias)
      for (int64_t k = 0; k < m * n; ++k) sums.grad_bias[k] += delta[k];
    if (need_u || need_v) samples_to_lanes(problem.x + first * p * q, count, p * q, xs);
    if (need_u) {
      // P_i = Δ_i V, as P_iᵀ(c, a) = Σ_j V(j, c) Δ_i(a, j); stored (m, q).
      scalar_times_lanes<T>(q, m, n, problem.v, {1, q}, delta, {1, n}, ps, {1, q});
      // dU(a, r) += Σ_c P_i(a, c) X_i(r, c).
      accumulate_lanes_times_lanes<T>(m, p, q, ps, {1, q}, xs, {1, q}, sums.grad_u, {p, 1});
    }
    if (need_x || need_v) {
      // R_i(r, j) = Σ_a U(a, r) Δ_i(a, j); stored (p, n).
      scalar_times_lanes<T>(p, n, m, problem.u, {1, p}, delta, {n, 1}, rs, {n, 1});
    }
    if (need_v) {
      // dV(j, c) += Σ_r R_i(r, j) X_i(r, c).
      accumulate_lanes_times_lanes<T>(n, q, p, rs, {n, 1}, xs, {q, 1}, sums.grad_v, {q, 1});
    }
    if (need_x) {
      // dX_i = R_i V, as dX_iᵀ(c, r) = Σ_j V(j, c) R_i(r, j); stored (p, q).
      scalar_times_lanes<T>(q, p, n, problem.v, {1, q}, rs, {1, n}, dxs, {1, q});
      lanes_to_samples(dxs, count, p * q, problem.grad_x + first * p * q);
    }
  }
}

}  // namespace

int64_t forward_scratch_vectors(const BilinearSizes& s) {
  return s.p * s.q + std::max(s.p * s.n, s.m * s.q) + s.m * s.n;
}

int64_t backward_scratch_vectors(const BilinearSizes& s) {
  return 2 * s.m * s.n + 2 * s.p * s.q + s.m * s.q + s.p * s.n;
}

MATNET_VECTOR_CLONES void forward_blocks(const ForwardProblem<float>& problem, int64_t first_block,
                                         int64_t last_block, Lanes<float>* scratch) {
  forward_blocks_impl(problem, first_block, last_block, scratch);
}

MATNET_VECTOR_CLONES void forward_blocks(const ForwardProblem<double>& problem, int64_t first_block,
                                         int64_t last_block, Lanes<double>* scratch) {
  forward_blocks_impl(problem, first_block, last_block, scratch);
}

MATNET_VECTOR_CLONES void backward_blocks(const BackwardProblem<float>& problem, int64_t first_block,
                                          int64_t last_block, Lanes<float>* scratch, const LaneSums<float>& sums) {
  backward_blocks_impl(problem, first_block, last_block, scratch, sums);
}

MATNET_VECTOR_CLONES void backward_blocks(const BackwardProblem<double>& problem, int64_t first_block,
                                          int64_t last_block, Lanes<double>* scratch, const LaneSums<double>& sums) {
  backward_blocks_impl(problem, first_block, last_block, scratch, sums);
}

}  // namespace matnet::cpu
