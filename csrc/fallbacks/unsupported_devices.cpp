// CompositeExplicitAutograd kernels of every matnet operator: what the dispatcher runs for a call
// whose backend has no kernel of ours (a device other than cpu, cuda and meta) and for a call with
// no tensor at all (multi_bilinear with empty lists). Each runs the operator's own checks, so an
// empty list gets its clear error, then names the device that has no kernel.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../multi_bilinear_checks.h"

namespace matnet::fallbacks {
namespace {

[[noreturn]] void no_kernel(const char* op, const at::Tensor& t) {
  TORCH_CHECK(false, op, ": no kernel for tensors on ", t.device(), "; matnet_torch runs on cpu and cuda");
}

at::Tensor bilinear_unsupported(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                                const std::optional<at::Tensor>& bias, c10::string_view activation) {
  check_bilinear_inputs("matnet::bilinear", x, u, v, bias, activation);
  no_kernel("matnet::bilinear", x);
}

BilinearGradients bilinear_backward_unsupported(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                                const at::Tensor& v, const at::Tensor& y, c10::string_view activation,
                                                const c10::List<bool>& output_mask) {
  check_bilinear_backward_inputs("matnet::bilinear_backward", grad_y, x, u, v, y, activation);
  bilinear_output_mask("matnet::bilinear_backward", output_mask);
  no_kernel("matnet::bilinear_backward", x);
}

at::Tensor multi_bilinear_unsupported(at::TensorList xs, at::TensorList us, at::TensorList vs,
                                      const std::optional<at::Tensor>& bias, c10::string_view activation) {
  check_multi_bilinear_inputs("matnet::multi_bilinear", xs, us, vs, bias, activation);
  no_kernel("matnet::multi_bilinear", xs[0]);
}

std::vector<at::Tensor> multi_bilinear_backward_unsupported(const at::Tensor& grad_y, at::TensorList xs,
                                                            at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                                            c10::string_view activation,
                                                            const c10::List<bool>& mask) {
  check_multi_bilinear_backward_inputs("matnet::multi_bilinear_backward", grad_y, xs, us, vs, y, activation, mask);
  no_kernel("matnet::multi_bilinear_backward", xs[0]);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CompositeExplicitAutograd, m) {
  m.impl("bilinear", &bilinear_unsupported);
  m.impl("bilinear_backward", &bilinear_backward_unsupported);
  m.impl("multi_bilinear", &multi_bilinear_unsupported);
  m.impl("multi_bilinear_backward", &multi_bilinear_backward_unsupported);
}

}  // namespace matnet::fallbacks
