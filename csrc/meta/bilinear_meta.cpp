// Meta (fake) kernels: shapes, dtypes and the same checks as the real kernels, on symbolic sizes,
// so that torch.compile(fullgraph=True) traces both operators without running them.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../bilinear_checks.h"

namespace matnet::meta {
namespace {

at::Tensor bilinear_meta(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                         const std::optional<at::Tensor>& bias, c10::string_view activation) {
  check_bilinear_inputs("matnet::bilinear", x, u, v, bias, activation);
  return at::empty_symint(bilinear_output_shape(x, u, v), x.options());
}

BilinearGradients bilinear_backward_meta(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                         const at::Tensor& v, const at::Tensor& y, c10::string_view activation,
                                         const c10::List<bool>& output_mask) {
  check_bilinear_backward_inputs("matnet::bilinear_backward", grad_y, x, u, v, y, activation);
  const BilinearOutputMask mask = bilinear_output_mask("matnet::bilinear_backward", output_mask);
  auto like = [](bool needed, c10::SymIntArrayRef shape, const at::Tensor& t) {
    return needed ? at::empty_symint(shape, t.options()) : at::Tensor();
  };
  const c10::SymInt bias_shape[] = {u.sym_size(0), v.sym_size(0)};
  return {like(mask[0], x.sym_sizes(), x), like(mask[1], u.sym_sizes(), u), like(mask[2], v.sym_sizes(), v),
          like(mask[3], bias_shape, x)};
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, Meta, m) {
  m.impl("bilinear", &bilinear_meta);
  m.impl("bilinear_backward", &bilinear_backward_meta);
}

}  // namespace matnet::meta
