// Built only when the extension has no CUDA kernels: CUDA tensors get a clear error instead of
// the dispatcher's generic "could not run ... with arguments from the 'CUDA' backend".
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../bilinear_checks.h"

namespace matnet::cuda {
namespace {

[[noreturn]] void fail(const char* op, const at::Tensor& x) {
  TORCH_CHECK(false, op, ": got tensors on ", x.device(),
              ", but this build of matnet_torch has no CUDA kernels; reinstall it where a CUDA toolkit "
              "and a CUDA build of torch are present, or with FORCE_CUDA=1");
}

at::Tensor bilinear_missing(const at::Tensor& x, const at::Tensor&, const at::Tensor&,
                            const std::optional<at::Tensor>&, c10::string_view) {
  fail("matnet::bilinear", x);
}

BilinearGradients bilinear_backward_missing(const at::Tensor&, const at::Tensor& x, const at::Tensor&,
                                            const at::Tensor&, const at::Tensor&, c10::string_view,
                                            const c10::List<bool>&) {
  fail("matnet::bilinear_backward", x);
}

at::Tensor multi_bilinear_missing(at::TensorList xs, at::TensorList, at::TensorList, const std::optional<at::Tensor>&,
                                  c10::string_view) {
  fail("matnet::multi_bilinear", xs[0]);
}

std::vector<at::Tensor> multi_bilinear_backward_missing(const at::Tensor& grad_y, at::TensorList, at::TensorList,
                                                        at::TensorList, const at::Tensor&, c10::string_view,
                                                        const c10::List<bool>&) {
  fail("matnet::multi_bilinear_backward", grad_y);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CUDA, m) {
  m.impl("bilinear", &bilinear_missing);
  m.impl("bilinear_backward", &bilinear_backward_missing);
  m.impl("multi_bilinear", &multi_bilinear_missing);
  m.impl("multi_bilinear_backward", &multi_bilinear_backward_missing);
}

}  // namespace matnet::cuda
