// C++ entry points of the matnet operators for LibTorch programs (and for our own autograd code):
// typed calls through the dispatcher, so they reach the CPU, CUDA or Meta kernel and record
// gradients exactly as torch.ops.matnet does from Python. Link the program against the library
// matnet_torch/_C*.so (see examples/cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <array>
#include <optional>
#include <tuple>

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
              c10::string_view, std::array<bool, 4>)>();
  return op.call(grad_y, x, u, v, y, activation, output_mask);
}

}  // namespace matnet
