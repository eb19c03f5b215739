// CPU kernels of matnet::multi_bilinear and matnet::multi_bilinear_backward (design.md §2): the
// same paths as bilinear (bilinear_paths.h), which sum over the D inputs inside each block.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../multi_bilinear_checks.h"
#include "bilinear_paths.h"

namespace matnet::cpu {
namespace {

// Input j as contiguous tensors, xs[j] viewed as (N, p_j, q_j).
std::vector<InputTensors> contiguous_inputs(at::TensorList xs, at::TensorList us, at::TensorList vs, int64_t batch) {
  std::vector<InputTensors> inputs;
  for (size_t j = 0; j < xs.size(); ++j)
    inputs.push_back({xs[j].contiguous().view({batch, xs[j].size(-2), xs[j].size(-1)}), us[j].contiguous(),
                      vs[j].contiguous()});
  return inputs;
}

at::Tensor multi_bilinear_cpu(at::TensorList xs, at::TensorList us, at::TensorList vs,
                              const std::optional<at::Tensor>& bias, c10::string_view activation) {
  const Activation parsed = check_multi_bilinear_inputs("matnet::multi_bilinear", xs, us, vs, bias, activation);
  at::Tensor y = at::empty_symint(multi_bilinear_output_shape(xs, us, vs), xs[0].options());
  if (y.numel() == 0) return y;
  const int64_t batch = bilinear_sizes(xs[0], us[0], vs[0]).batch;
  at::Tensor y_samples = y.view({batch, us[0].size(0), vs[0].size(0)});
  run_bilinear_forward(contiguous_inputs(xs, us, vs, batch), bias.has_value() ? bias->contiguous() : at::Tensor(),
                       parsed, y_samples);
  return y;
}

std::vector<at::Tensor> multi_bilinear_backward_cpu(const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                                    at::TensorList vs, const at::Tensor& y,
                                                    c10::string_view activation, const c10::List<bool>& mask) {
  const Activation parsed = check_multi_bilinear_backward_inputs("matnet::multi_bilinear_backward", grad_y, xs, us,
                                                                 vs, y, activation, mask);
  const size_t inputs = xs.size();
  const BilinearSizes sizes = bilinear_sizes(xs[0], us[0], vs[0]);  // batch, m, n shared by every input
  const int64_t batch = sizes.batch, m = sizes.m, n = sizes.n;
  const auto wanted = [&](bool needed, const at::Tensor& like) {
    return needed ? at::empty(like.sizes(), like.options()) : at::Tensor();
  };
  std::vector<GradientTensors> grads;
  for (size_t j = 0; j < inputs; ++j) {
    const at::Tensor grad_x = wanted(mask[j], xs[j]);
    grads.push_back({grad_x.defined() ? grad_x.view({batch, xs[j].size(-2), xs[j].size(-1)}) : grad_x,
                     wanted(mask[inputs + j], us[j]), wanted(mask[2 * inputs + j], vs[j])});
  }
  const at::Tensor grad_bias = mask[3 * inputs] ? at::empty({m, n}, y.options()) : at::Tensor();
  run_bilinear_backward(gradient_samples(grad_y, batch, m, n), y.contiguous().view({batch, m, n}),
                        contiguous_inputs(xs, us, vs, batch), parsed, grads, grad_bias);
  std::vector<at::Tensor> grad_xs, grad_us, grad_vs;
  for (size_t j = 0; j < inputs; ++j) {
    grad_xs.push_back(grads[j].x.defined() ? grads[j].x.view(xs[j].sizes()) : at::Tensor());  // xs[j]'s shape
    grad_us.push_back(grads[j].u);
    grad_vs.push_back(grads[j].v);
  }
  return gradients_in_mask_order(grad_xs, grad_us, grad_vs, grad_bias);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CPU, m) {
  m.impl("multi_bilinear", &multi_bilinear_cpu);
  m.impl("multi_bilinear_backward", &multi_bilinear_backward_cpu);
}

}  // namespace matnet::cpu
