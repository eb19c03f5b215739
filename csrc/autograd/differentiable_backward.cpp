// With G = σ'(Z) ⊙ ∂L/∂Y (from y, as the fused kernels do), the gradients of Y_i = σ(Σ_j U_j X_i^j V_jᵀ + B) are
//   dX_i^j = U_jᵀ G_i V_j,   dU_j = Σ_i G_i V_j X_i^jᵀ,   dV_j = Σ_i G_iᵀ U_j X_i^j,   dB = Σ_i G_i,
// here written with ATen operators that have derivatives (and batching and forward-mode rules) of
// their own, so autograd and torch.func can differentiate them again. y enters through σ', so a
// second derivative reaches the forward's inputs through y's own graph.
#include "differentiable_backward.h"

#include <ATen/ops/matmul.h>
#include <ATen/ops/tensordot.h>
#include <torch/library.h>

#include "../activation_aten.h"
#include "../bilinear_checks.h"

namespace matnet::autograd {

std::vector<at::Tensor> differentiable_backward(const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                                at::TensorList vs, const at::Tensor& y, Activation activation,
                                                const c10::List<bool>& mask) {
  const size_t inputs = xs.size();
  const c10::SymInt m = y.sym_size(-2), n = y.sym_size(-1);
  c10::SymInt batch = 1;  // N, the product of the leading dimensions
  for (int64_t d = 0; d + 2 < y.dim(); ++d) batch *= y.sym_size(d);
  const at::Tensor grad_z = activation_backward(grad_y, y, activation);  // G, of y's shape
  const at::Tensor grad_samples = grad_z.reshape_symint({batch, m, n});  // G as (N, m, n)
  std::vector<at::Tensor> grads(3 * inputs + 1);
  for (size_t j = 0; j < inputs; ++j) {
    const at::Tensor &u = us[j], &v = vs[j];
    const c10::SymInt p = u.sym_size(1), q = v.sym_size(1);
    const at::Tensor x = xs[j].reshape_symint({batch, p, q});
    // U_jᵀ G V_j in the cheaper association: (UᵀG)V costs p·m·n + p·n·q, Uᵀ(GV) m·n·q + p·m·q.
    if (mask[j])
      grads[j] = p * m * n + p * n * q <= m * n * q + p * m * q ? at::matmul(at::matmul(u.t(), grad_z), v)
                                                                : at::matmul(u.t(), at::matmul(grad_z, v));
    if (mask[inputs + j]) grads[inputs + j] = at::tensordot(at::matmul(grad_samples, v), x, {0, 2}, {0, 2});
    if (mask[2 * inputs + j]) grads[2 * inputs + j] = at::tensordot(grad_samples, at::matmul(u, x), {0, 1}, {0, 1});
  }
  if (mask[3 * inputs]) grads[3 * inputs] = grad_samples.sum(0);
  return grads;
}

namespace {

// Errors name the operator that was called, with multi_bilinear's argument names.
constexpr FamilyMember kDifferentiableBackward{"matnet::multi_bilinear", "matnet::differentiable_backward", true};

// matnet::differentiable_backward: the gradients that output_mask asks for, in its order.
std::vector<at::Tensor> differentiable_backward_op(const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                                   at::TensorList vs, const at::Tensor& y, c10::string_view activation,
                                                   const c10::List<bool>& mask) {
  const Activation parsed = check_backward_arguments(kDifferentiableBackward, grad_y, xs, us, vs, y, activation, mask);
  std::vector<at::Tensor> requested;
  for (const at::Tensor& grad : differentiable_backward(grad_y, xs, us, vs, y, parsed, mask))
    if (grad.defined()) requested.push_back(grad);
  return requested;
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CompositeImplicitAutograd, m) {
  m.impl("differentiable_backward", &differentiable_backward_op);
}

// Under torch.vmap the same decomposition, its ATen operators batched by their own rules (torch's
// own composite operators register themselves at this key the same way).
TORCH_LIBRARY_IMPL(matnet, FuncTorchBatched, m) {
  m.impl("differentiable_backward", &differentiable_backward_op);
}

}  // namespace matnet::autograd
