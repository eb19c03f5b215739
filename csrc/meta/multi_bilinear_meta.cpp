// Meta (fake) kernels of the multi-input operators: shapes, dtypes and the same checks as the real
// kernels, on symbolic sizes, so that torch.compile(fullgraph=True) traces them without running them.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../multi_bilinear_checks.h"

namespace matnet::meta {
namespace {

at::Tensor multi_bilinear_meta(at::TensorList xs, at::TensorList us, at::TensorList vs,
                               const std::optional<at::Tensor>& bias, c10::string_view activation) {
  check_multi_bilinear_inputs("matnet::multi_bilinear", xs, us, vs, bias, activation);
  return at::empty_symint(multi_bilinear_output_shape(xs, us, vs), xs[0].options());
}

std::vector<at::Tensor> multi_bilinear_backward_meta(const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                                     at::TensorList vs, const at::Tensor& y,
                                                     c10::string_view activation, const c10::List<bool>& mask) {
  check_multi_bilinear_backward_inputs("matnet::multi_bilinear_backward", grad_y, xs, us, vs, y, activation, mask);
  // The requested gradients in the mask's order [dxs…, dus…, dvs…, dbias], each shaped like its input.
  std::vector<at::Tensor> requested;
  size_t entry = 0;
  for (at::TensorList list : {xs, us, vs})
    for (const at::Tensor& t : list)
      if (mask[entry++]) requested.push_back(at::empty_symint(t.sym_sizes(), t.options()));
  if (mask[entry]) {
    const c10::SymInt bias_shape[] = {us[0].sym_size(0), vs[0].sym_size(0)};
    requested.push_back(at::empty_symint(bias_shape, y.options()));
  }
  return requested;
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, Meta, m) {
  m.impl("multi_bilinear", &multi_bilinear_meta);
  m.impl("multi_bilinear_backward", &multi_bilinear_backward_meta);
}

}  // namespace matnet::meta
