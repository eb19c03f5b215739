#include "bilinear_gemm.h"

#include <ATen/ops/add.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>

#include "../activation_aten.h"
#include "bilinear_problem.h"

namespace matnet::cpu {

// A product whose right-hand factor is shared by all samples, A_i B with A (N, r, k) contiguous,
// is one GEMM over the flattened batch: (N·r, k)(k, c). One whose left-hand factor is shared,
// S A_i, is a batched product (S broadcast over the batch); each product below is arranged to be
// of the first kind where the mathematics allows.

void gemm_forward(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation, at::Tensor& y) {
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
      const at::Tensor w_rows = at::matmul(u, x).view({samples * m, q});
      if (j == 0) {
        at::mm_out(y_rows, w_rows, v.t());
      } else {
        at::addmm_out(y_rows, y_rows, w_rows, v.t());
      }
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
void gemm_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                   Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias) {
  const int64_t samples = y.size(0), m = y.size(1), n = y.size(2);
  const at::Tensor delta = activation_grad(grad_y, y, activation);
  if (grad_bias.defined()) {
    at::Tensor out = grad_bias;
    at::sum_out(out, delta, {0});
  }
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
      if (grad_v.defined()) at::mm_out(grad_v, r_rows.t(), x.view({samples * p, q}));
    }
    if (grad_u.defined()) {
      const at::Tensor products = at::mm(delta_rows, v).view({samples, m, q});
      at::sum_out(grad_u, at::bmm(products, x.transpose(1, 2)), {0});
    }
  }
}

}  // namespace matnet::cpu
