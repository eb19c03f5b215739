// Autocast (mixed precision) kernels of matnet::bilinear: what the operator does inside
// torch.autocast regions (matnet::multi_bilinear follows the same rule). The rule, per device:
//
// CPU (torch.autocast("cpu"), bfloat16 or float16): the operator runs in float32 and returns the
//   dtype of x. The CPU kernels exist for float32 and float64 only, and a float32 run is both the
//   fastest and the most accurate way to compute a 16-bit result: the answer equals an exact
//   16-bit kernel with float32 accumulation, rounded once at the end. Returning x's dtype keeps the
//   layer transparent to the dtype flowing through a model: 16-bit activations (say from a
//   convolution under autocast) stay 16-bit downstream, float32 ones stay float32 and are never
//   rounded (float32 parameters do not change that; torchvision's operators follow the same rule).
//
// CUDA (torch.autocast("cuda"), float16 or bfloat16): the operator is a lower-precision operator
//   like torch.matmul: x, u, v and bias are cast to the autocast dtype and the 16-bit kernels run
//   (cuBLAS products with float32 accumulation), returning that dtype. On a GPU that halves the
//   memory traffic and uses the tensor cores, which is what autocast is for.
//
// float64 tensors are never cast (autocast's own rule). The backward needs no Autocast kernel:
// autograd records the casts, so gradients reach each input in its own dtype.
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "../include/matnet/ops.h"

namespace matnet::autocast {
namespace {

at::Tensor bilinear_autocast_cpu(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                                 const std::optional<at::Tensor>& bias, c10::string_view activation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  constexpr auto cpu = c10::DeviceType::CPU;
  using at::autocast::cached_cast;
  const at::Tensor y = matnet::bilinear(cached_cast(at::kFloat, x, cpu), cached_cast(at::kFloat, u, cpu),
                                        cached_cast(at::kFloat, v, cpu), cached_cast(at::kFloat, bias, cpu),
                                        activation);
  return y.to(x.scalar_type());
}

at::Tensor bilinear_autocast_cuda(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                                  const std::optional<at::Tensor>& bias, c10::string_view activation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCUDA);
  constexpr auto cuda = c10::DeviceType::CUDA;
  using at::autocast::cached_cast;
  const at::ScalarType half = at::autocast::get_autocast_dtype(at::kCUDA);
  return matnet::bilinear(cached_cast(half, x, cuda), cached_cast(half, u, cuda), cached_cast(half, v, cuda),
                          cached_cast(half, bias, cuda), activation);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, AutocastCPU, m) { m.impl("bilinear", &bilinear_autocast_cpu); }

TORCH_LIBRARY_IMPL(matnet, AutocastCUDA, m) { m.impl("bilinear", &bilinear_autocast_cuda); }

}  // namespace matnet::autocast
