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

void check_matrix(const char* op, const std::string& name, const at::Tensor& t, const char* dims) {
  TORCH_CHECK(t.dim() == 2, op, ": ", name, " must be a 2-D matrix ", dims, ", got shape ", t.sym_sizes());
}

// Floating point everywhere; on the CPU the kernels are written for float32, float64, bfloat16 and
// float16 (the last two computed in float32).
void check_dtype(const char* op, const std::string& name, const at::Tensor& x) {
  const auto dtype = x.scalar_type();
  TORCH_CHECK(at::isFloatingType(dtype), op, ": ", name, " must be a floating-point tensor, got ", dtype);
  TORCH_CHECK(!x.device().is_cpu() || dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16 ||
                  dtype == at::kHalf,
              op, ": ", name, " has dtype ", dtype,
              ", which has no cpu kernel (float32, float64, bfloat16 and float16 do)");
}

// t has x's dtype and device (x_name: what x is called in the message).
void check_like(const char* op, const std::string& name, const at::Tensor& t, const std::string& x_name,
                const at::Tensor& x) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": expected ", name, " to have the dtype of ", x_name, " (",
              x.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK(t.device() == x.device(), op, ": expected ", x_name, " and ", name, " on the same device, got ",
              x.device(), " and ", t.device());
}

// Input j on its own: x (..., p, q), u (m, p), v (n, q), a floating dtype with a kernel, u and v like x.
void check_input(const char* op, const FamilyMember& member, size_t j, const at::Tensor& x, const at::Tensor& u,
                 const at::Tensor& v) {
  const std::string x_name = member.argument("x", j), u_name = member.argument("u", j),
                    v_name = member.argument("v", j);
  TORCH_CHECK(x.dim() >= 2, op, ": ", x_name, " must have at least 2 dimensions (..., p, q), got shape ",
              x.sym_sizes());
  check_matrix(op, u_name, u, "(m, p)");
  check_matrix(op, v_name, v, "(n, q)");
  check_dtype(op, x_name, x);
  check_like(op, u_name, u, x_name, x);
  check_like(op, v_name, v, x_name, x);
  TORCH_CHECK(u.sym_size(1) == x.sym_size(-2), op, ": ", u_name, ".size(1) (", u.sym_size(1), ") must equal ", x_name,
              ".size(-2) (", x.sym_size(-2), ")");
  TORCH_CHECK(v.sym_size(1) == x.sym_size(-1), op, ": ", v_name, ".size(1) (", v.sym_size(1), ") must equal ", x_name,
              ".size(-1) (", x.sym_size(-1), ")");
}

// The output's element count fits in int64 (checked before anything is allocated).
void check_output_indexable(const char* op, c10::SymIntArrayRef shape) {
  int64_t elements = 1;
  for (const c10::SymInt& size : shape) {
    const std::optional<int64_t> concrete = size.maybe_as_int();
    if (!concrete.has_value()) return;  // symbolic (torch.compile): checked when it runs
    TORCH_CHECK(!__builtin_mul_overflow(elements, *concrete, &elements), op, ": the output would have shape ", shape,
                ", more elements than a tensor can index (2^63 - 1)");
  }
}

// The arguments every operator of the family shares, checked on behalf of `op` (the forward's or
// the backward's name).
Activation check_inputs(const char* op, const FamilyMember& member, at::TensorList xs, at::TensorList us,
                        at::TensorList vs, const std::optional<at::Tensor>& bias, c10::string_view activation) {
  TORCH_CHECK(!xs.empty(), op, ": xs must hold at least one input matrix batch, got an empty list");
  TORCH_CHECK(xs.size() == us.size() && xs.size() == vs.size(), op,
              ": xs, us and vs must have the same length (one U and one V per input), got ", xs.size(), ", ",
              us.size(), " and ", vs.size());
  const std::string x0 = member.argument("x", 0);
  for (size_t j = 0; j < xs.size(); ++j) {
    check_input(op, member, j, xs[j], us[j], vs[j]);
    if (j == 0) continue;
    const std::string x = member.argument("x", j), u = member.argument("u", j), v = member.argument("v", j);
    check_like(op, x, xs[j], x0, xs[0]);
    const auto leading = xs[j].sym_sizes().slice(0, xs[j].dim() - 2);
    const auto leading_0 = xs[0].sym_sizes().slice(0, xs[0].dim() - 2);
    TORCH_CHECK(leading == leading_0, op, ": every input must have the same leading (batch) dimensions; ", x, " has ",
                leading, " but xs[0] has ", leading_0);
    TORCH_CHECK(us[j].sym_size(0) == us[0].sym_size(0), op, ": ", u, ".size(0) (", us[j].sym_size(0),
                ") must equal us[0].size(0) (", us[0].sym_size(0), "): every input maps to the same m×n output");
    TORCH_CHECK(vs[j].sym_size(0) == vs[0].sym_size(0), op, ": ", v, ".size(0) (", vs[j].sym_size(0),
                ") must equal vs[0].size(0) (", vs[0].sym_size(0), "): every input maps to the same m×n output");
  }
  if (bias.has_value()) {
    const at::Tensor& b = *bias;
    check_like(op, "bias", b, x0, xs[0]);
    const c10::SymInt &m = us[0].sym_size(0), &n = vs[0].sym_size(0);
    TORCH_CHECK(b.dim() == 2 && b.sym_size(0) == m && b.sym_size(1) == n, op, ": bias must have shape [m, n] = [", m,
                ", ", n, "], got ", b.sym_sizes());
  }
  check_output_indexable(op, output_shape(xs, us, vs));
  return parse_activation(activation, op);
}

// An output-shaped argument (y, grad_y): like xs[0], of shape `expected`.
void check_output_like(const char* op, const FamilyMember& member, const char* name, const at::Tensor& t,
                       const at::Tensor& x, c10::SymIntArrayRef expected) {
  check_like(op, name, t, member.argument("x", 0), x);
  TORCH_CHECK(t.sym_sizes() == expected, op, ": ", name, " must have shape ", expected, ", got ", t.sym_sizes());
}

}  // namespace

Activation check_forward_arguments(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                                   const std::optional<at::Tensor>& bias, c10::string_view activation) {
  return check_inputs(op.forward, op, xs, us, vs, bias, activation);
}

Activation check_backward_arguments(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                    at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                    c10::string_view activation, const c10::List<bool>& output_mask) {
  const Activation parsed = check_inputs(op.backward, op, xs, us, vs, std::nullopt, activation);
  const size_t entries = 3 * xs.size() + 1;
  TORCH_CHECK(output_mask.size() == entries, op.backward, ": output_mask must have ",
              op.lists ? "3·len(xs) + 1 = " + std::to_string(entries) : std::to_string(entries), " entries (",
              op.lists ? "[dxs…, dus…, dvs…, dbias]" : "[dX, dU, dV, dB]", "), got ", output_mask.size());
  const auto expected = output_shape(xs, us, vs);
  check_output_like(op.backward, op, "y", y, xs[0], expected);
  check_output_like(op.backward, op, "grad_y", grad_y, xs[0], expected);
  return parsed;
}

c10::SymDimVector output_shape(at::TensorList xs, at::TensorList us, at::TensorList vs) {
  const auto x_shape = xs[0].sym_sizes();
  c10::SymDimVector shape(x_shape.begin(), x_shape.end() - 2);
  shape.push_back(us[0].sym_size(0));
  shape.push_back(vs[0].sym_size(0));
  return shape;
}

int64_t batch_size(at::TensorList xs) { return c10::multiply_integers(xs[0].sizes().begin(), xs[0].sizes().end() - 2); }

}  // namespace matnet
