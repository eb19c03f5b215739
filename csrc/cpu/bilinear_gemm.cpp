#include "bilinear_gemm.h"

#include <ATen/ops/add.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
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
// streams its operands from memory (the chunk sizes measured: docs/cpu_kernels.md, "The GEMM
// path"). Where the system does not tell the L2 size, 1 MiB.
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

// Two layouts of a chunk's intermediates. Sample-major, (N, rows, cols) as X and Y themselves: a
// product whose right-hand factor is shared by all samples, A_i B, is one GEMM over the flattened
// batch, (N·r, k)(k, c); one whose left-hand factor is shared, S A_i, is a batched product (S
// broadcast over the batch). Batch-last, (rows, cols, N): a shared left-hand factor is one GEMM,
// S (r, k)(k, c·N), and every product writes rows of c·N entries.
//
// BLAS is slow where a GEMM's output rows are a few entries long or a batched product's matrices
// hold a few hundred multiply-adds, which is what sample-major makes of small outputs. Batch-last
// wins for small outputs and loses for large ones and for a backward with dX (which must move back
// to sample-major); from the measured crossover (docs/cpu_kernels.md, "The GEMM path") it is taken
// for outputs of at most 15×15 entries in the forward and 12×12 in the backward of an input whose dX
// is not wanted.
constexpr int64_t kBatchLastForwardOutputs = 225;
constexpr int64_t kBatchLastBackwardOutputs = 144;

// The forward in batch-last needs every input's T = X Vᵀ association (U X would need X itself
// rearranged).
bool forward_batch_last(const std::vector<InputTensors>& inputs, int64_t m, int64_t n) {
  if (m * n > kBatchLastForwardOutputs) return false;
  return std::all_of(inputs.begin(), inputs.end(),
                     [&](const InputTensors& in) { return right_product_first(m, n, in.x.size(1), in.x.size(2)); });
}

// T_i = X_i Vᵀ (p, n) for every sample, batch-last as T(k, (i, r)) = (V Xᵀ)(k, (i, r)): one GEMM
// (n, q)(q, N·p).
at::Tensor right_products_batch_last(const at::Tensor& x, const at::Tensor& v) {
  return at::mm(v, x.view({x.size(0) * x.size(1), x.size(2)}).t());
}

void forward_chunk_sample_major(const std::vector<InputTensors>& inputs, at::Tensor& y) {
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
}

// Z(a, (k, i)) = Σ_j Σ_r U_j(a, r) T_j(r, (k, i)): one GEMM (m, p)(p, n·N) per input; then
// y (N, m, n) = Z + B in the pass that moves the batch to the front.
void forward_chunk_batch_last(const std::vector<InputTensors>& inputs, const at::Tensor& bias, at::Tensor& y) {
  const int64_t samples = y.size(0), m = y.size(1), n = y.size(2);
  at::Tensor z = at::empty({m, n * samples}, y.options());
  for (size_t j = 0; j < inputs.size(); ++j) {
    const auto& [x, u, v] = inputs[j];
    const at::Tensor t = right_products_batch_last(x, v);
    accumulate_product(z, u, t.view({n * samples, x.size(1)}).t(), j == 0);
  }
  const at::Tensor z_samples = z.view({m, n, samples}).permute({2, 0, 1});
  if (bias.defined()) {
    at::add_out(y, z_samples, bias);
  } else {
    y.copy_(z_samples);
  }
}

// Y_i = σ(Σ_j U_j X_i^j V_jᵀ + B).
void forward_chunk(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation, at::Tensor y) {
  if (forward_batch_last(inputs, y.size(1), y.size(2))) {
    forward_chunk_batch_last(inputs, bias, y);
  } else {
    forward_chunk_sample_major(inputs, y);
    if (bias.defined()) y.add_(bias);
  }
  activate_(y, activation);
}

// Input j's gradients in sample-major, through R_i = U_jᵀ Δ_i and P_i = Δ_i V_j:
//   R_i = U_jᵀ Δ_i           (p, n)   batched
//   P_i = Δ_i V_j            (m, q)   one GEMM (N·m, n)(n, q)
//   dX_i = R_i V_j           (p, q)   one GEMM (N·p, n)(n, q)
//   dV_j = Σ_i R_iᵀ X_i      (n, q)   one GEMM (n, N·p)(N·p, q)
//   dU_j = Σ_i P_i X_iᵀ      (m, p)   batched, then summed over the batch
void backward_input_sample_major(const at::Tensor& delta, const InputTensors& in, GradientTensors& grad, bool first) {
  const int64_t samples = delta.size(0), m = delta.size(1), n = delta.size(2);
  const auto& [x, u, v] = in;
  const int64_t p = x.size(1), q = x.size(2);
  if (grad.x.defined() || grad.v.defined()) {
    const at::Tensor r_rows = at::matmul(u.t(), delta).view({samples * p, n});
    if (grad.x.defined()) {
      at::Tensor grad_x_rows = grad.x.view({samples * p, q});
      at::mm_out(grad_x_rows, r_rows, v);
    }
    if (grad.v.defined()) accumulate_product(grad.v, r_rows.t(), x.view({samples * p, q}), first);
  }
  if (grad.u.defined()) {
    const at::Tensor products = at::mm(delta.view({samples * m, n}), v).view({samples, m, q});
    accumulate(grad.u, at::bmm(products, x.transpose(1, 2)).sum(0), first);
  }
}

// Input j's dU_j and dV_j in batch-last, from Δ(a, (k, i)):
//   dU_j = Σ_i Δ_i T_iᵀ      (m, p)   T as in the forward; one GEMM (m, n·N)(n·N, p)
//   R = U_jᵀ Δ               (p, n·N) one GEMM (p, m)(m, n·N)
//   dV_j = Σ_r Σ_i R(r, (k, i)) X_i(r, c)   a batch of p GEMMs (n, N)(N, q), summed over r
void backward_input_batch_last(const at::Tensor& delta_last, const InputTensors& in, GradientTensors& grad,
                               bool first) {
  const int64_t m = delta_last.size(0), n = delta_last.size(1), samples = delta_last.size(2);
  const auto& [x, u, v] = in;
  const int64_t p = x.size(1);
  const at::Tensor delta_rows = delta_last.view({m, n * samples});
  if (grad.u.defined()) {
    const at::Tensor t = right_products_batch_last(x, v);
    accumulate_product(grad.u, delta_rows, t.view({n * samples, p}), first);
  }
  if (grad.v.defined()) {
    const at::Tensor r = at::mm(u.t(), delta_rows).view({p, n, samples});
    accumulate(grad.v, at::bmm(r, x.transpose(0, 1)).sum(0), first);
  }
}

// With Δ_i = G_i ⊙ σ'(Z_i), every input's gradients (docs/design.md §2) and dB = Σ_i Δ_i. Δ is formed
// by σ' in batch-last where every input takes that layout, else in sample-major and rearranged for
// the inputs that take batch-last (multi-input layers whose dX are wanted for some inputs only).
// The sums over samples are written by the first chunk and added to by the others.
void backward_chunk(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                    Activation activation, std::vector<GradientTensors>& grads, at::Tensor grad_bias, bool first) {
  const int64_t m = y.size(1), n = y.size(2);
  std::vector<bool> batch_last;
  for (const GradientTensors& grad : grads) batch_last.push_back(m * n <= kBatchLastBackwardOutputs && !grad.x.defined());
  const bool any_sample_major = std::find(batch_last.begin(), batch_last.end(), false) != batch_last.end();
  at::Tensor delta, delta_last;  // (N, m, n) and (m, n, N)
  if (any_sample_major) {
    delta = activation_grad(grad_y, y, activation);
  } else {
    delta_last = at::empty({m, n, y.size(0)}, y.options());
    activation_grad_out(delta_last, grad_y.permute({1, 2, 0}), y.permute({1, 2, 0}), activation);
  }
  if (grad_bias.defined()) accumulate(grad_bias, any_sample_major ? delta.sum(0) : delta_last.sum(-1), first);
  for (size_t j = 0; j < inputs.size(); ++j) {
    const GradientTensors& grad = grads[j];
    if (!grad.x.defined() && !grad.u.defined() && !grad.v.defined()) continue;
    if (!batch_last[j]) {
      backward_input_sample_major(delta, inputs[j], grads[j], first);
    } else {
      if (!delta_last.defined()) delta_last = delta.permute({1, 2, 0}).contiguous();
      backward_input_batch_last(delta_last, inputs[j], grads[j], first);
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
