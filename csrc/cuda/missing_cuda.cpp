// Built only when the extension has no CUDA kernels: CUDA tensors get a clear error instead of
// the dispatcher's generic "could not run ... with arguments from the 'CUDA' backend".
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "../family_kernels.h"

namespace matnet::cuda {
namespace {

[[noreturn]] void fail(const char* op, const at::Tensor& t) {
  TORCH_CHECK(false, op, ": got tensors on ", t.device(),
              ", but this build of matnet_torch has no CUDA kernels; reinstall it where a CUDA toolkit "
              "and a CUDA build of torch are present, or with FORCE_CUDA=1");
}

at::Tensor forward_missing(const FamilyMember& op, at::TensorList xs, at::TensorList, at::TensorList,
                           const std::optional<at::Tensor>&, c10::string_view) {
  fail(op.forward, xs[0]);
}

std::vector<at::Tensor> backward_missing(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList,
                                         at::TensorList, at::TensorList, const at::Tensor&, c10::string_view,
                                         const c10::List<bool>&) {
  fail(op.backward, grad_y);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CUDA, m) { register_family<&forward_missing, &backward_missing>(m); }

}  // namespace matnet::cuda
