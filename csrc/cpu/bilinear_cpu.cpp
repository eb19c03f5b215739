// CPU kernels of the operator family (operator_family.h; docs/design.md §1, §2): validation and outputs
// here, the arithmetic in bilinear_paths.h (per-ISA lane kernels or the GEMM path), which sums over
// the D inputs inside each block of samples.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "../family_kernels.h"
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

at::Tensor forward_cpu(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                       const std::optional<at::Tensor>& bias, c10::string_view activation) {
  const Activation parsed = check_forward_arguments(op, xs, us, vs, bias, activation);
  at::Tensor y = at::empty_symint(output_shape(xs, us, vs), xs[0].options());
  if (y.numel() == 0) return y;
  const int64_t batch = batch_size(xs);
  at::Tensor y_samples = y.view({batch, us[0].size(0), vs[0].size(0)});
  run_bilinear_forward(contiguous_inputs(xs, us, vs, batch), bias.has_value() ? bias->contiguous() : at::Tensor(),
                       parsed, y_samples);
  return y;
}

std::vector<at::Tensor> backward_cpu(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                     at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                     c10::string_view activation, const c10::List<bool>& mask) {
  const Activation parsed = check_backward_arguments(op, grad_y, xs, us, vs, y, activation, mask);
  const size_t inputs = xs.size();
  const int64_t batch = batch_size(xs), m = us[0].size(0), n = vs[0].size(0);
  const auto wanted = [&](size_t entry, const at::Tensor& like) {
    return mask[entry] ? at::empty(like.sizes(), like.options()) : at::Tensor();
  };
  std::vector<at::Tensor> grads(3 * inputs + 1);  // [dxs…, dus…, dvs…, dbias], outputs of their inputs' shapes
  std::vector<GradientTensors> samples;            // the same, dX viewed as (N, p_j, q_j)
  for (size_t j = 0; j < inputs; ++j) {
    grads[j] = wanted(j, xs[j]);
    grads[inputs + j] = wanted(inputs + j, us[j]);
    grads[2 * inputs + j] = wanted(2 * inputs + j, vs[j]);
    samples.push_back({grads[j].defined() ? grads[j].view({batch, xs[j].size(-2), xs[j].size(-1)}) : at::Tensor(),
                       grads[inputs + j], grads[2 * inputs + j]});
  }
  if (mask[3 * inputs]) grads[3 * inputs] = at::empty({m, n}, y.options());
  run_bilinear_backward(gradient_samples(grad_y, batch, m, n), y.contiguous().view({batch, m, n}),
                        contiguous_inputs(xs, us, vs, batch), parsed, samples, grads[3 * inputs]);
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CPU, m) { register_family<&forward_cpu, &backward_cpu>(m); }

}  // namespace matnet::cpu
