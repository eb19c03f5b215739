// Autocast (mixed precision) kernels of matnet::multi_bilinear, by the rule of matnet::bilinear
// (bilinear_autocast.cpp): on the CPU in float32, returning the dtype the modalities xs promote to;
// on CUDA in the autocast dtype.
#include <ATen/autocast_mode.h>
#include <c10/core/ScalarType.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "../include/matnet/ops.h"

namespace matnet::autocast {
namespace {

at::Tensor multi_bilinear_autocast_cpu(at::TensorList xs, at::TensorList us, at::TensorList vs,
                                       const std::optional<at::Tensor>& bias, c10::string_view activation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  constexpr auto cpu = c10::DeviceType::CPU;
  using at::autocast::cached_cast;
  const at::Tensor y = matnet::multi_bilinear(cached_cast(at::kFloat, xs, cpu), cached_cast(at::kFloat, us, cpu),
                                              cached_cast(at::kFloat, vs, cpu), cached_cast(at::kFloat, bias, cpu),
                                              activation);
  at::ScalarType result = y.scalar_type();
  if (!xs.empty()) {
    result = xs[0].scalar_type();
    for (const at::Tensor& x : xs) result = c10::promoteTypes(result, x.scalar_type());
  }
  return y.to(result);
}

at::Tensor multi_bilinear_autocast_cuda(at::TensorList xs, at::TensorList us, at::TensorList vs,
                                        const std::optional<at::Tensor>& bias, c10::string_view activation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCUDA);
  constexpr auto cuda = c10::DeviceType::CUDA;
  using at::autocast::cached_cast;
  const at::ScalarType half = at::autocast::get_autocast_dtype(at::kCUDA);
  return matnet::multi_bilinear(cached_cast(half, xs, cuda), cached_cast(half, us, cuda), cached_cast(half, vs, cuda),
                                cached_cast(half, bias, cuda), activation);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, AutocastCPU, m) { m.impl("multi_bilinear", &multi_bilinear_autocast_cpu); }

TORCH_LIBRARY_IMPL(matnet, AutocastCUDA, m) { m.impl("multi_bilinear", &multi_bilinear_autocast_cuda); }

}  // namespace matnet::autocast
