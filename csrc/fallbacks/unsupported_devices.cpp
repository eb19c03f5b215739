// CompositeExplicitAutograd kernels of the operator family: what the dispatcher runs for a call
// whose backend has no kernel of ours (a device other than cpu, cuda and meta) and for a call with
// no tensor at all (multi_bilinear with empty lists). Each runs the operator's own checks, so an
// empty list gets its clear error, then names the device that has no kernel.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "../family_kernels.h"

namespace matnet::fallbacks {
namespace {

[[noreturn]] void no_kernel(const char* op, const at::Tensor& t) {
  TORCH_CHECK(false, op, ": no kernel for tensors on ", t.device(), "; matnet_torch runs on cpu and cuda");
}

at::Tensor forward_unsupported(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                               const std::optional<at::Tensor>& bias, c10::string_view activation) {
  check_forward_arguments(op, xs, us, vs, bias, activation);
  no_kernel(op.forward, xs[0]);
}

std::vector<at::Tensor> backward_unsupported(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                             at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                             c10::string_view activation, const c10::List<bool>& mask) {
  check_backward_arguments(op, grad_y, xs, us, vs, y, activation, mask);
  no_kernel(op.backward, xs[0]);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CompositeExplicitAutograd, m) {
  register_family<&forward_unsupported, &backward_unsupported>(m);
}

}  // namespace matnet::fallbacks
