#include "bilinear_gemm.h"

#include <ATen/ops/add.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>

#include <algorithm>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "../activation_aten.h"
#include "bilinear_problem.h"

namespace matnet::cpu {
namespace {

// The products run on chunks of the batch holding about as many bytes of inputs X as one core's
// L2 cache, so that a chunk's operands and intermediates (about 4.5 times X's bytes in the backward)
// stay in the caches from one product to the next; over the whole batch at once every product
// streams its operands from memory. Measured on Zen 4 (1 MiB L2), backward per sample against the
// chunk's bytes of X, 128 KiB … 2 MiB: 28×28→20×20, N = 1024: 3.1, 2.9, 2.9, 3.0, 3.0, 3.8 µs;
// N = 8192: 2.9, 2.8, 2.7, 2.7, 2.7, 2.8 µs; 64×64→64×64, N = 1024: 29.7–32.3 µs up to 1 MiB,
// 35.8 µs at 2 MiB.
// Where the L2 size is not known, 1 MiB.
int64_t chunk_input_bytes() {
  static const int64_t bytes = [] {
    int64_t l2 = 0;
#if defined(_SC_LEVEL2_CACHE_SIZE)
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return l2 > 0 ? std::clamp<int64_t>(l2, int64_t{256} << 10, int64_t{8} << 20) : int64_t{1} << 20;
  }();
  return bytes;
}

constexpr int64_t kMinChunkSamples = 16;

// Calls body(first, count) for consecutive chunks of the batch, in order, all of about the same size.
template <typename Body>
void for_each_chunk(const std::vector<InputTensors>& inputs, int64_t samples, const Body& body) {
  int64_t bytes_per_sample = 0;
  for (const InputTensors& in : inputs) bytes_per_sample += in.x.size(1) * in.x.size(2) * in.x.element_size();
  const int64_t largest = std::max(kMinChunkSamples, chunk_input_bytes() / std::max<int64_t>(bytes_per_sample, 1));
  const int64_t chunks = std::max<int64_t>(1, (samples + largest - 1) / largest);
  const int64_t chunk = std::max<int64_t>(1, (samples + chunks - 1) / chunks);
  // An empty batch is one empty chunk, so that the sums over samples are still written (zeros).
  int64_t first = 0;
  do {
    body(first, std::min(chunk, samples - first));
    first += chunk;
  } while (first < samples);
}

std::vector<InputTensors> chunk_of(const std::vector<InputTensors>& inputs, int64_t first, int64_t count) {
  std::vector<InputTensors> out;
  for (const InputTensors& in : inputs) out.push_back({in.x.narrow(0, first, count), in.u, in.v});
  return out;
}

// out = value for the first chunk, out += value for the others.
void accumulate(at::Tensor& out, const at::Tensor& value, bool first) {
  if (first) {
    out.copy_(value);
  } else {
    out.add_(value);
  }
}

// out = a b for the first chunk (or input), out += a b for the others.
void accumulate_product(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, bool first) {
  if (first) {
    at::mm_out(out, a, b);
  } else {
    at::addmm_out(out, out, a, b);
  }
}

// A product whose right-hand factor is shared by all samples, A_i B with A (N, r, k) contiguous,
// is one GEMM over the flattened batch: (N·r, k)(k, c). One whose left-hand factor is shared,
// S A_i, is a batched product (S broadcast over the batch); each product below is arranged to be
// of the first kind where the mathematics allows.

void forward_chunk(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation, at::Tensor y) {
  const int64_t samples = y.size(0), m = y.size(1), n = y.size(2);
  at::Tensor y_rows = y.view({samples * m, n});
  for (size_t j = 0; j < inputs.size(); ++j) {
    const auto& [x, u, v] = inputs[j];
    const int64_t p = x.size(1), q = x.size(2);
    if (right_product_first(m, n, p, q)) {
      // T_i = X_i Vᵀ: one GEMM (N·p, q)(q, n); then Z_i = U T_i, batched, into y directly for the
      // first input.
      const at::Tensor t = at::mm(x.view({samples * p, q}), v.t()).view({samples, p, n});
      if (j == 0) {
        at::matmul_out(y, u, t);
      } else {
        y.add_(at::matmul(u, t));
      }
    } else {
      // W_i = U X_i, batched; then Z_i = W_i Vᵀ: one GEMM (N·m, q)(q, n), into y directly.
      accumulate_product(y_rows, at::matmul(u, x).view({samples * m, q}), v.t(), j == 0);
    }
  }
  // Y_i = σ(Z_i + B) in place.
  if (bias.defined()) y.add_(bias);
  activate_(y, activation);
}

// With Δ_i = G_i ⊙ σ'(Z_i), for every input (design.md §2), through R_i = U_jᵀ Δ_i and P_i = Δ_i V_j:
//   R_i = U_jᵀ Δ_i           (p, n)   batched
//   P_i = Δ_i V_j            (m, q)   one GEMM (N·m, n)(n, q)
//   dX_i = R_i V_j           (p, q)   one GEMM (N·p, n)(n, q)
//   dV_j = Σ_i R_iᵀ X_i      (n, q)   one GEMM (n, N·p)(N·p, q)
//   dU_j = Σ_i P_i X_iᵀ      (m, p)   batched, then summed over the batch
//   dB = Σ_i Δ_i
// The sums over samples are written by the first chunk and added to by the others.
void backward_chunk(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                    Activation activation, const std::vector<GradientTensors>& grads, at::Tensor grad_bias,
                    bool first) {
  const int64_t samples = y.size(0), m = y.size(1), n = y.size(2);
  const at::Tensor delta = activation_grad(grad_y, y, activation);
  if (grad_bias.defined()) accumulate(grad_bias, delta.sum(0), first);
  const at::Tensor delta_rows = delta.view({samples * m, n});
  for (size_t j = 0; j < inputs.size(); ++j) {
    const auto& [x, u, v] = inputs[j];
    auto [grad_x, grad_u, grad_v] = grads[j];  // handles to the outputs
    const int64_t p = x.size(1), q = x.size(2);
    if (grad_x.defined() || grad_v.defined()) {
      const at::Tensor r_rows = at::matmul(u.t(), delta).view({samples * p, n});
      if (grad_x.defined()) {
        at::Tensor grad_x_rows = grad_x.view({samples * p, q});
        at::mm_out(grad_x_rows, r_rows, v);
      }
      if (grad_v.defined()) accumulate_product(grad_v, r_rows.t(), x.view({samples * p, q}), first);
    }
    if (grad_u.defined()) {
      const at::Tensor products = at::mm(delta_rows, v).view({samples, m, q});
      accumulate(grad_u, at::bmm(products, x.transpose(1, 2)).sum(0), first);
    }
  }
}

}  // namespace

void gemm_forward(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation, at::Tensor& y) {
  for_each_chunk(inputs, y.size(0), [&](int64_t first, int64_t count) {
    forward_chunk(chunk_of(inputs, first, count), bias, activation, y.narrow(0, first, count));
  });
}

void gemm_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                   Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias) {
  for_each_chunk(inputs, y.size(0), [&](int64_t first, int64_t count) {
    std::vector<GradientTensors> chunk_grads;
    for (const GradientTensors& grad : grads)
      chunk_grads.push_back({grad.x.defined() ? grad.x.narrow(0, first, count) : at::Tensor(), grad.u, grad.v});
    backward_chunk(grad_y.narrow(0, first, count), y.narrow(0, first, count), chunk_of(inputs, first, count),
                   activation, chunk_grads, grad_bias, first == 0);
  });
}

}  // namespace matnet::cpu
