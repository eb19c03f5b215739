#include "bilinear_gemm.h"

#include <ATen/ops/add.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/sigmoid_backward.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/tanh.h>
#include <ATen/ops/tanh_backward.h>
#include <ATen/ops/threshold_backward.h>

#include "bilinear_problem.h"

namespace matnet::cpu {
namespace {

// A (N, r, c) batch laid out (r, N·c): sample i's matrix in columns [i·c, (i+1)·c). A view when
// N = 1, else one copy: the price of turning N small products into one large one.
at::Tensor rows_by_samples(const at::Tensor& batch) {
  const int64_t samples = batch.size(0), rows = batch.size(1), cols = batch.size(2);
  return batch.transpose(0, 1).reshape({rows, samples * cols});
}

// The inverse: (r, N·c) back to (N·r, c), sample i's rows in [i·r, (i+1)·r).
at::Tensor samples_by_rows(const at::Tensor& wide, int64_t samples) {
  const int64_t rows = wide.size(0), cols = wide.size(1) / samples;
  return wide.view({rows, samples, cols}).transpose(0, 1).reshape({samples * rows, cols});
}

}  // namespace

void gemm_forward(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation, at::Tensor& y) {
  const int64_t samples = y.size(0), m = y.size(1), n = y.size(2);
  // Z laid out (m, N·n): Z_i in columns [i·n, (i+1)·n), accumulated over the inputs.
  at::Tensor z = at::empty({m, samples * n}, y.options());
  for (size_t j = 0; j < inputs.size(); ++j) {
    const auto& [x, u, v] = inputs[j];
    const int64_t p = x.size(1), q = x.size(2);
    const float beta = j == 0 ? 0.0f : 1.0f;
    if (right_product_first(m, n, p, q)) {
      // T = X Vᵀ over all rows of all samples at once: (N·p, q)(q, n); then Z (+)= U T, as
      // (m, p)(p, N·n).
      const at::Tensor t = at::mm(x.view({samples * p, q}), v.t());
      at::addmm_out(z, z, u, rows_by_samples(t.view({samples, p, n})), beta);
    } else {
      // W = U X as (m, p)(p, N·q); then Z (+)= W Vᵀ over all rows at once: (m·N, q)(q, n).
      const at::Tensor w = at::mm(u, rows_by_samples(x));
      at::Tensor z_rows = z.view({m * samples, n});
      at::addmm_out(z_rows, z_rows, w.view({m * samples, q}), v.t(), beta);
    }
  }
  // Y_i = σ(Z_i + B), written once in the output's (N, m, n) layout.
  const at::Tensor z_samples = z.view({m, samples, n}).transpose(0, 1);
  if (bias.defined()) {
    at::add_out(y, z_samples, bias);
  } else {
    y.copy_(z_samples);
  }
  switch (activation) {
    case Activation::Sigmoid:
      at::sigmoid_(y);
      break;
    case Activation::Tanh:
      at::tanh_(y);
      break;
    case Activation::Relu:
      at::relu_(y);
      break;
    case Activation::Identity:
      break;
  }
}

// With Δ_i = G_i ⊙ σ'(Z_i), for every input (design.md §2):
//   R_i = U_jᵀ Δ_i           (p, n)   one GEMM (p, m)(m, N·n)
//   dX_i = R_i V_j           (p, q)   one GEMM (N·p, n)(n, q)
//   dV_j = Σ_i R_iᵀ X_i      (n, q)   one GEMM (n, N·p)(N·p, q)
//   dU_j = Σ_i Δ_i T_iᵀ      (m, p)   with T_i = X_i V_jᵀ: one GEMM (m, N·n)(N·n, p)
//   dB = Σ_i Δ_i
void gemm_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                   Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias) {
  const int64_t samples = y.size(0), m = y.size(1), n = y.size(2);
  if (samples == 0) {  // the sums over no samples are 0; dX is empty
    for (const auto& [grad_x, grad_u, grad_v] : grads)
      for (at::Tensor sum : {grad_u, grad_v})
        if (sum.defined()) sum.zero_();
    if (grad_bias.defined()) grad_bias.zero_();
    return;
  }
  at::Tensor delta;
  switch (activation) {
    case Activation::Sigmoid:
      delta = at::sigmoid_backward(grad_y, y);
      break;
    case Activation::Tanh:
      delta = at::tanh_backward(grad_y, y);
      break;
    case Activation::Relu:
      delta = at::threshold_backward(grad_y, y, 0);
      break;
    case Activation::Identity:
      delta = grad_y;
      break;
  }
  if (grad_bias.defined()) {
    at::Tensor out = grad_bias;
    at::sum_out(out, delta, {0});
  }
  const at::Tensor delta_wide = rows_by_samples(delta);  // (m, N·n)
  for (size_t j = 0; j < inputs.size(); ++j) {
    const auto& [x, u, v] = inputs[j];
    auto [grad_x, grad_u, grad_v] = grads[j];  // handles to the outputs
    const int64_t p = x.size(1), q = x.size(2);
    const at::Tensor x_rows = x.view({samples * p, q});
    if (grad_x.defined() || grad_v.defined()) {
      const at::Tensor r = samples_by_rows(at::mm(u.t(), delta_wide), samples);  // (N·p, n)
      if (grad_x.defined()) {
        at::Tensor grad_x_rows = grad_x.view({samples * p, q});
        at::mm_out(grad_x_rows, r, v);
      }
      if (grad_v.defined()) at::mm_out(grad_v, r.t(), x_rows);
    }
    if (grad_u.defined()) {
      const at::Tensor t = at::mm(x_rows, v.t()).view({samples, p, n});
      at::mm_out(grad_u, delta_wide, rows_by_samples(t).t());
    }
  }
}

}  // namespace matnet::cpu
