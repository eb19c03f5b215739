// Autocast (mixed precision) kernels of the operator family: what bilinear and multi_bilinear do
// inside torch.autocast regions. The rule, per device:
//
// CPU (torch.autocast("cpu"), bfloat16 or float16): the operator runs in float32 and returns the
//   dtype the inputs xs promote to (x's dtype for bilinear). A float32 run computes a 16-bit
//   result as the CPU's 16-bit kernels do (float32 arithmetic, rounded once at the end), and also
//   serves float32 activations with 16-bit-cast weights without rounding them. Returning the inputs' dtype keeps the layer transparent to the dtype flowing
//   through a model: 16-bit activations (say from a convolution under autocast) stay 16-bit
//   downstream, float32 ones stay float32 and are never rounded (float32 parameters do not change
//   that; torchvision's operators follow the same rule).
//
// CUDA (torch.autocast("cuda"), float16 or bfloat16): the operator is a lower-precision operator
//   like torch.matmul: xs, us, vs and bias are cast to the autocast dtype and the 16-bit kernels run
//   (float32 accumulation, one rounding of the output), returning that dtype. On a GPU that halves
//   the memory traffic, which is what autocast is for.
//
// float64 tensors are never cast (autocast's own rule). The backward needs no Autocast kernel:
// autograd records the casts, so gradients reach each input in its own dtype.
#include <ATen/autocast_mode.h>
#include <c10/core/ScalarType.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "../family_kernels.h"

namespace matnet::autocast {
namespace {

at::Tensor forward_autocast_cpu(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                                const std::optional<at::Tensor>& bias, c10::string_view activation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  constexpr auto cpu = c10::DeviceType::CPU;
  using at::autocast::cached_cast;
  const at::Tensor y = call_forward(op, cached_cast(at::kFloat, xs, cpu), cached_cast(at::kFloat, us, cpu),
                                    cached_cast(at::kFloat, vs, cpu), cached_cast(at::kFloat, bias, cpu), activation);
  at::ScalarType result = y.scalar_type();
  if (!xs.empty()) {
    result = xs[0].scalar_type();
    for (const at::Tensor& x : xs) result = c10::promoteTypes(result, x.scalar_type());
  }
  return y.to(result);
}

at::Tensor forward_autocast_cuda(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                                 const std::optional<at::Tensor>& bias, c10::string_view activation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCUDA);
  constexpr auto cuda = c10::DeviceType::CUDA;
  using at::autocast::cached_cast;
  const at::ScalarType half = at::autocast::get_autocast_dtype(at::kCUDA);
  return call_forward(op, cached_cast(half, xs, cuda), cached_cast(half, us, cuda), cached_cast(half, vs, cuda),
                      cached_cast(half, bias, cuda), activation);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, AutocastCPU, m) { register_forwards<&forward_autocast_cpu>(m); }

TORCH_LIBRARY_IMPL(matnet, AutocastCUDA, m) { register_forwards<&forward_autocast_cuda>(m); }

}  // namespace matnet::autocast
