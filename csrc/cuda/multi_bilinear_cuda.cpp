// CUDA kernels of matnet::multi_bilinear and matnet::multi_bilinear_backward (design.md §2), built
// on the bilinear CUDA kernels: Z = Σ_j U_j X^j V_jᵀ as D identity bilinear products, bias and σ
// by ATen; backward from Δ = G ⊙ σ'(Z) as D identity bilinear backward products and dB = Σ_i Δ_i.
// Correct and graph-capturable, not fused across inputs: the D products stay D kernel chains.
#include <ATen/core/Tensor.h>
#include <ATen/ops/sum.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../activation_aten.h"
#include "../matnet_ops.h"
#include "../multi_bilinear_checks.h"

namespace matnet::cuda {
namespace {

at::Tensor multi_bilinear_cuda(at::TensorList xs, at::TensorList us, at::TensorList vs,
                               const std::optional<at::Tensor>& bias, c10::string_view activation) {
  const Activation parsed = check_multi_bilinear_inputs("matnet::multi_bilinear", xs, us, vs, bias, activation);
  const c10::cuda::CUDAGuard device_guard(xs[0].device());
  at::Tensor z = matnet::bilinear(xs[0], us[0], vs[0], bias, "identity");
  for (size_t j = 1; j < xs.size(); ++j) z.add_(matnet::bilinear(xs[j], us[j], vs[j], std::nullopt, "identity"));
  activate_(z, parsed);
  return z;
}

std::vector<at::Tensor> multi_bilinear_backward_cuda(const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                                     at::TensorList vs, const at::Tensor& y,
                                                     c10::string_view activation, const c10::List<bool>& mask) {
  const Activation parsed = check_multi_bilinear_backward_inputs("matnet::multi_bilinear_backward", grad_y, xs, us,
                                                                 vs, y, activation, mask);
  const c10::cuda::CUDAGuard device_guard(xs[0].device());
  const size_t inputs = xs.size();
  const at::Tensor delta = activation_grad(grad_y, y, parsed);
  std::vector<at::Tensor> dxs, dus, dvs;
  for (size_t j = 0; j < inputs; ++j) {
    // With the identity, bilinear_backward's y is not read: Δ stands in for it (same shape).
    auto [grad_x, grad_u, grad_v, unused_bias] = matnet::bilinear_backward(
        delta, xs[j], us[j], vs[j], delta, "identity", {mask[j], mask[inputs + j], mask[2 * inputs + j], false});
    dxs.push_back(grad_x);
    dus.push_back(grad_u);
    dvs.push_back(grad_v);
  }
  return gradients_in_mask_order(dxs, dus, dvs, mask[3 * inputs] ? delta.flatten(0, -3).sum(0) : at::Tensor());
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CUDA, m) {
  m.impl("multi_bilinear", &multi_bilinear_cuda);
  m.impl("multi_bilinear_backward", &multi_bilinear_backward_cuda);
}

}  // namespace matnet::cuda
