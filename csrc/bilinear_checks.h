// Input validation shared by every kernel of the bilinear operators (CPU, CUDA and Meta), so that
// eager execution and torch.compile's fake tensors raise the same errors with the same words.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/List.h>
#include <c10/core/SymIntArrayRef.h>
#include <c10/util/string_view.h>

#include <array>
#include <optional>

#include "activation.h"

namespace matnet {

// Maps "identity" | "sigmoid" | "tanh" | "relu" to its enum; anything else is a ValueError.
Activation parse_activation(c10::string_view name, const char* op);

// What the arguments of one input are called in error messages: "x", "u", "v" for bilinear,
// "xs[2]", "us[2]", "vs[2]" for input 2 of multi_bilinear.
struct BilinearInputNames {
  const char* x;
  const char* u;
  const char* v;
};

// x (..., p, q), u (m, p), v (n, q): ranks, sizes, a floating dtype with a kernel, u and v like x.
void check_bilinear_input(const char* op, const BilinearInputNames& names, const at::Tensor& x, const at::Tensor& u,
                          const at::Tensor& v);

// t has x's dtype and device (x_name: what x is called in the message).
void check_like_x(const char* op, const char* name, const at::Tensor& t, const char* x_name, const at::Tensor& x);

// The output's element count fits in int64 (checked before anything is allocated).
void check_output_indexable(const char* op, c10::SymIntArrayRef shape);

// bias, if present, is (m, n) and like x.
void check_bias(const char* op, const std::optional<at::Tensor>& bias, const char* x_name, const at::Tensor& x,
                const c10::SymInt& m, const c10::SymInt& n);

// An output-shaped argument (y, grad_y): like x, of shape `expected`.
void check_output_like(const char* op, const char* name, const at::Tensor& t, const char* x_name, const at::Tensor& x,
                       c10::SymIntArrayRef expected);

// x (..., p, q), u (m, p), v (n, q), bias (m, n) or none: ranks, sizes, dtypes and devices.
// Returns the parsed activation.
Activation check_bilinear_inputs(
    const char* op,
    const at::Tensor& x,
    const at::Tensor& u,
    const at::Tensor& v,
    const std::optional<at::Tensor>& bias,
    c10::string_view activation);

// The forward's inputs again, plus y and grad_y of shape (..., m, n).
Activation check_bilinear_backward_inputs(
    const char* op,
    const at::Tensor& grad_y,
    const at::Tensor& x,
    const at::Tensor& u,
    const at::Tensor& v,
    const at::Tensor& y,
    c10::string_view activation);

// (..., p, q) -> (..., m, n); symbolic so that the Meta kernels trace dynamic shapes.
c10::SymDimVector bilinear_output_shape(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v);

// Z_i = U (X_i Vᵀ) needs p·q·n + m·p·n multiply-adds, (U X_i) Vᵀ needs m·p·q + m·q·n (design.md §1):
// whether the first is the cheaper order for U (m×p), X_i (p×q), V (n×q).
inline bool right_product_first(int64_t m, int64_t n, int64_t p, int64_t q) {
  return p * q * n + m * p * n <= m * p * q + m * q * n;
}

// Sizes of a validated call: x viewed as N matrices of p×q, output N matrices of m×n.
struct BilinearSizes {
  int64_t batch, m, n, p, q;
  bool right_product_first() const { return matnet::right_product_first(m, n, p, q); }
};
BilinearSizes bilinear_sizes(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v);

// The dX, dU, dV, dB returned by bilinear_backward; an entry is undefined where its mask is false.
using BilinearGradients = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using BilinearOutputMask = std::array<bool, 4>;

// The schema's bool[] output_mask as the four flags [dX, dU, dV, dB]; another length is an error
// naming the operator and the argument.
BilinearOutputMask bilinear_output_mask(const char* op, const c10::List<bool>& output_mask);

}  // namespace matnet
