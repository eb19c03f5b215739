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
void check_dtype(const char* op, const char* name, const at::Tensor& x) {
  const auto dtype = x.scalar_type();
  TORCH_CHECK(
      at::isFloatingType(dtype), op, ": ", name, " must be a floating-point tensor, got ", dtype);
  TORCH_CHECK(
      !x.device().is_cpu() || dtype == at::kFloat || dtype == at::kDouble,
      op, ": ", name, " has dtype ", dtype, ", which has no cpu kernel (float32 and float64 do)");
}

}  // namespace

void check_like_x(const char* op, const char* name, const at::Tensor& t, const char* x_name, const at::Tensor& x) {
  TORCH_CHECK(
      t.scalar_type() == x.scalar_type(),
      op, ": expected ", name, " to have the dtype of ", x_name, " (", x.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK(
      t.device() == x.device(),
      op, ": expected ", x_name, " and ", name, " on the same device, got ", x.device(), " and ", t.device());
}

void check_bilinear_input(const char* op, const BilinearInputNames& names, const at::Tensor& x, const at::Tensor& u,
                          const at::Tensor& v) {
  TORCH_CHECK(
      x.dim() >= 2, op, ": ", names.x, " must have at least 2 dimensions (..., p, q), got shape ", x.sym_sizes());
  check_matrix(op, names.u, u, "(m, p)");
  check_matrix(op, names.v, v, "(n, q)");
  check_dtype(op, names.x, x);
  check_like_x(op, names.u, u, names.x, x);
  check_like_x(op, names.v, v, names.x, x);
  TORCH_CHECK(
      u.sym_size(1) == x.sym_size(-2),
      op, ": ", names.u, ".size(1) (", u.sym_size(1), ") must equal ", names.x, ".size(-2) (", x.sym_size(-2), ")");
  TORCH_CHECK(
      v.sym_size(1) == x.sym_size(-1),
      op, ": ", names.v, ".size(1) (", v.sym_size(1), ") must equal ", names.x, ".size(-1) (", x.sym_size(-1), ")");
}

void check_output_indexable(const char* op, c10::SymIntArrayRef shape) {
  int64_t elements = 1;
  for (const c10::SymInt& size : shape) {
    const std::optional<int64_t> concrete = size.maybe_as_int();
    if (!concrete.has_value()) return;  // symbolic (torch.compile): checked when it runs
    TORCH_CHECK(!__builtin_mul_overflow(elements, *concrete, &elements), op, ": the output would have shape ", shape,
                ", more elements than a tensor can index (2^63 - 1)");
  }
}

void check_bias(const char* op, const std::optional<at::Tensor>& bias, const char* x_name, const at::Tensor& x,
                const c10::SymInt& m, const c10::SymInt& n) {
  if (!bias.has_value()) return;
  const at::Tensor& b = *bias;
  check_like_x(op, "bias", b, x_name, x);
  TORCH_CHECK(
      b.dim() == 2 && b.sym_size(0) == m && b.sym_size(1) == n,
      op, ": bias must have shape [m, n] = [", m, ", ", n, "], got ", b.sym_sizes());
}

void check_output_like(const char* op, const char* name, const at::Tensor& t, const char* x_name, const at::Tensor& x,
                       c10::SymIntArrayRef expected) {
  check_like_x(op, name, t, x_name, x);
  TORCH_CHECK(t.sym_sizes() == expected, op, ": ", name, " must have shape ", expected, ", got ", t.sym_sizes());
}

Activation check_bilinear_inputs(
    const char* op,
    const at::Tensor& x,
    const at::Tensor& u,
    const at::Tensor& v,
    const std::optional<at::Tensor>& bias,
    c10::string_view activation) {
  check_bilinear_input(op, {"x", "u", "v"}, x, u, v);
  check_bias(op, bias, "x", x, u.sym_size(0), v.sym_size(0));
  check_output_indexable(op, bilinear_output_shape(x, u, v));
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
  check_output_like(op, "y", y, "x", x, expected);
  check_output_like(op, "grad_y", grad_y, "x", x, expected);
  return parsed;
}

c10::SymDimVector bilinear_output_shape(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v) {
  const auto x_shape = x.sym_sizes();
  c10::SymDimVector shape(x_shape.begin(), x_shape.end() - 2);
  shape.push_back(u.sym_size(0));
  shape.push_back(v.sym_size(0));
  return shape;
}

BilinearOutputMask bilinear_output_mask(const char* op, const c10::List<bool>& output_mask) {
  TORCH_CHECK(output_mask.size() == 4, op, ": output_mask must have 4 entries ([dX, dU, dV, dB]), got ",
              output_mask.size());
  return {output_mask[0], output_mask[1], output_mask[2], output_mask[3]};
}

BilinearSizes bilinear_sizes(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v) {
  const int64_t batch = c10::multiply_integers(x.sizes().begin(), x.sizes().end() - 2);
  return {batch, u.size(0), v.size(0), x.size(-2), x.size(-1)};
}

}  // namespace matnet
