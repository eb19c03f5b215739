// Meta (fake) kernels of the operator family: shapes, dtypes and the same checks as the real
// kernels, on symbolic sizes, so that torch.compile(fullgraph=True) traces every operator without
// running it.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "../family_kernels.h"

namespace matnet::meta {
namespace {

at::Tensor forward_meta(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                        const std::optional<at::Tensor>& bias, c10::string_view activation) {
  check_forward_arguments(op, xs, us, vs, bias, activation);
  return at::empty_symint(output_shape(xs, us, vs), xs[0].options());
}

// Each requested gradient shaped like its input, dbias (m, n).
std::vector<at::Tensor> backward_meta(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                      at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                      c10::string_view activation, const c10::List<bool>& mask) {
  check_backward_arguments(op, grad_y, xs, us, vs, y, activation, mask);
  std::vector<at::Tensor> grads;
  size_t entry = 0;
  for (at::TensorList list : {xs, us, vs})
    for (const at::Tensor& t : list)
      grads.push_back(mask[entry++] ? at::empty_symint(t.sym_sizes(), t.options()) : at::Tensor());
  const c10::SymInt bias_shape[] = {us[0].sym_size(0), vs[0].sym_size(0)};
  grads.push_back(mask[entry] ? at::empty_symint(bias_shape, y.options()) : at::Tensor());
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, Meta, m) { register_family<&forward_meta, &backward_meta>(m); }

}  // namespace matnet::meta
