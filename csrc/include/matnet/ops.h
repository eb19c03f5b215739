// The matnet operators for C++: typed calls through the PyTorch dispatcher, so they reach the CPU,
// CUDA, Meta or Autocast kernel and record gradients (the autograd is registered in C++) exactly as
// torch.ops.matnet does from Python. Part of the public API: include <matnet/matnet.h>.
#pragma once

#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <array>
#include <optional>
#include <tuple>
#include <vector>

#define MATNET_API __attribute__((visibility("default")))

namespace matnet {

// Y_i = σ(U X_i Vᵀ + B) for x (..., p, q), u (m, p), v (n, q), bias (m, n);
// activation is "identity", "sigmoid", "tanh" or "relu".
inline at::Tensor bilinear(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                           const std::optional<at::Tensor>& bias = std::nullopt,
                           c10::string_view activation = "identity") {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("matnet::bilinear", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                               const std::optional<at::Tensor>&, c10::string_view)>();
  return op.call(x, u, v, bias, activation);
}

// (dX, dU, dV, dB) of bilinear from grad_y, the saved x and y; entries whose mask is false are undefined.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bilinear_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u, const at::Tensor& v, const at::Tensor& y,
    c10::string_view activation, std::array<bool, 4> output_mask) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("matnet::bilinear_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
              c10::string_view, const c10::List<bool>&)>();
  return op.call(grad_y, x, u, v, y, activation, c10::List<bool>(c10::ArrayRef<bool>(output_mask)));
}

// Y_i = σ(Σ_j U_j X_i^j V_jᵀ + B) for xs[j] (..., p_j, q_j) with the same leading dimensions,
// us[j] (m, p_j), vs[j] (n, q_j), bias (m, n) (docs/design.md §2).
inline at::Tensor multi_bilinear(at::TensorList xs, at::TensorList us, at::TensorList vs,
                                 const std::optional<at::Tensor>& bias = std::nullopt,
                                 c10::string_view activation = "identity") {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("matnet::multi_bilinear", "")
                             .typed<at::Tensor(at::TensorList, at::TensorList, at::TensorList,
                                               const std::optional<at::Tensor>&, c10::string_view)>();
  return op.call(xs, us, vs, bias, activation);
}

// The gradients of multi_bilinear that output_mask asks for, in its order
// [dxs[0] … dxs[D−1], dus[0] …, dvs[0] …, dbias] (3·D + 1 entries).
inline std::vector<at::Tensor> multi_bilinear_backward(const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                                       at::TensorList vs, const at::Tensor& y,
                                                       c10::string_view activation, const c10::List<bool>& output_mask) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("matnet::multi_bilinear_backward", "")
                             .typed<std::vector<at::Tensor>(const at::Tensor&, at::TensorList, at::TensorList,
                                                            at::TensorList, const at::Tensor&, c10::string_view,
                                                            const c10::List<bool>&)>();
  return op.call(grad_y, xs, us, vs, y, activation, output_mask);
}

// Whether the linked library was built with CUDA kernels (otherwise CUDA tensors get a clear error).
MATNET_API bool has_cuda_kernels();

namespace detail {
// The calls above find the operators by name, so a program refers to no symbol of the library and a
// linker that drops unreferenced shared libraries (--as-needed, the default on many distributions)
// would drop it, and with it the static initialisers that register the operators. This pointer,
// emitted in every program that includes the header, is such a reference (torchvision does the same).
[[gnu::used]] static bool (*const library_anchor)() = &has_cuda_kernels;
}  // namespace detail

}  // namespace matnet
