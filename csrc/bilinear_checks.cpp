#include "bilinear_checks.h"

#include <c10/util/Exception.h>

namespace matnet {

Activation parse_activation(c10::string_view name, const char* op) {
  if (name == "identity") return Activation::Identity;
  if (name == "sigmoid") return Activation::Sigmoid;
  if (name == "tanh") return Activation::Tanh;
  if (name == "relu") return Activation::Relu;
  TORCH_CHECK_VALUE(
      false, op, ": unknown activation '", name, "'; expected one of identity, sigmoid, tanh, relu");
}

namespace {

void check_matrix(const char* op, const char* name, const at::Tensor& t, const char* dims) {
  TORCH_CHECK(
      t.dim() == 2, op, ": ", name, " must be a 2-D matrix ", dims, ", got shape ", t.sym_sizes());
}

// Floating point everywhere; on the CPU the kernels are written for float32 and float64 only.
void check_dtype(const char* op, const at::Tensor& x) {
  const auto dtype = x.scalar_type();
  TORCH_CHECK(
      at::isFloatingType(dtype), op, ": x must be a floating-point tensor, got ", dtype);
  TORCH_CHECK(
      !x.device().is_cpu() || dtype == at::kFloat || dtype == at::kDouble,
      op, ": x has dtype ", dtype, ", which has no cpu kernel (float32 and float64 do)");
}

void check_like_x(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK(
      t.scalar_type() == x.scalar_type(),
      op, ": expected ", name, " to have the dtype of x (", x.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK(
      t.device() == x.device(),
      op, ": expected x and ", name, " on the same device, got ", x.device(), " and ", t.device());
}

}  // namespace

Activation check_bilinear_inputs(
    const char* op,
    const at::Tensor& x,
    const at::Tensor& u,
    const at::Tensor& v,
    const std::optional<at::Tensor>& bias,
    c10::string_view activation) {
  TORCH_CHECK(
      x.dim() >= 2, op, ": x must have at least 2 dimensions (..., p, q), got shape ", x.sym_sizes());
  check_matrix(op, "u", u, "(m, p)");
  check_matrix(op, "v", v, "(n, q)");
  check_dtype(op, x);
  check_like_x(op, "u", u, x);
  check_like_x(op, "v", v, x);
  TORCH_CHECK(
      u.sym_size(1) == x.sym_size(-2),
      op, ": u.size(1) (", u.sym_size(1), ") must equal x.size(-2) (", x.sym_size(-2), ")");
  TORCH_CHECK(
      v.sym_size(1) == x.sym_size(-1),
      op, ": v.size(1) (", v.sym_size(1), ") must equal x.size(-1) (", x.sym_size(-1), ")");
  if (bias.has_value()) {
    const at::Tensor& b = *bias;
    check_like_x(op, "bias", b, x);
    TORCH_CHECK(
        b.dim() == 2 && b.sym_size(0) == u.sym_size(0) && b.sym_size(1) == v.sym_size(0),
        op, ": bias must have shape [m, n] = [", u.sym_size(0), ", ", v.sym_size(0), "], got ",
        b.sym_sizes());
  }
  return parse_activation(activation, op);
}

Activation check_bilinear_backward_inputs(
    const char* op,
    const at::Tensor& grad_y,
    const at::Tensor& x,
    const at::Tensor& u,
    const at::Tensor& v,
    const at::Tensor& y,
    c10::string_view activation) {
  const Activation parsed = check_bilinear_inputs(op, x, u, v, std::nullopt, activation);
  const auto expected = bilinear_output_shape(x, u, v);
  for (const auto& [name, t] : {std::pair{"y", &y}, std::pair{"grad_y", &grad_y}}) {
    check_like_x(op, name, *t, x);
    TORCH_CHECK(
        t->sym_sizes() == c10::SymIntArrayRef(expected),
        op, ": ", name, " must have shape ", c10::SymIntArrayRef(expected), ", got ", t->sym_sizes());
  }
  return parsed;
}

c10::SymDimVector bilinear_output_shape(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v) {
  const auto x_shape = x.sym_sizes();
  c10::SymDimVector shape(x_shape.begin(), x_shape.end() - 2);
  shape.push_back(u.sym_size(0));
  shape.push_back(v.sym_size(0));
  return shape;
}

BilinearSizes bilinear_sizes(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v) {
  const int64_t batch = c10::multiply_integers(x.sizes().begin(), x.sizes().end() - 2);
  return {batch, u.size(0), v.size(0), x.size(-2), x.size(-1)};
}

}  // namespace matnet
