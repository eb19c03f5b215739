#include "multi_bilinear_checks.h"

#include <c10/util/Exception.h>

#include <string>

namespace matnet {
namespace {

std::string indexed(const char* list, size_t j) { return std::string(list) + "[" + std::to_string(j) + "]"; }

}  // namespace

Activation check_multi_bilinear_inputs(const char* op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                                       const std::optional<at::Tensor>& bias, c10::string_view activation) {
  TORCH_CHECK(!xs.empty(), op, ": xs must hold at least one input matrix batch, got an empty list");
  TORCH_CHECK(xs.size() == us.size() && xs.size() == vs.size(), op,
              ": xs, us and vs must have the same length (one U and one V per input), got ", xs.size(), ", ",
              us.size(), " and ", vs.size());
  for (size_t j = 0; j < xs.size(); ++j) {
    const std::string x = indexed("xs", j), u = indexed("us", j), v = indexed("vs", j);
    check_bilinear_input(op, {x.c_str(), u.c_str(), v.c_str()}, xs[j], us[j], vs[j]);
    if (j == 0) continue;
    check_like_x(op, x.c_str(), xs[j], "xs[0]", xs[0]);
    const auto leading = xs[j].sym_sizes().slice(0, xs[j].dim() - 2);
    const auto leading_0 = xs[0].sym_sizes().slice(0, xs[0].dim() - 2);
    TORCH_CHECK(leading == leading_0, op, ": every input must have the same leading (batch) dimensions; ", x,
                " has ", leading, " but xs[0] has ", leading_0);
    TORCH_CHECK(us[j].sym_size(0) == us[0].sym_size(0), op, ": ", u, ".size(0) (", us[j].sym_size(0),
                ") must equal us[0].size(0) (", us[0].sym_size(0), "): every input maps to the same m×n output");
    TORCH_CHECK(vs[j].sym_size(0) == vs[0].sym_size(0), op, ": ", v, ".size(0) (", vs[j].sym_size(0),
                ") must equal vs[0].size(0) (", vs[0].sym_size(0), "): every input maps to the same m×n output");
  }
  check_bias(op, bias, "xs[0]", xs[0], us[0].sym_size(0), vs[0].sym_size(0));
  check_output_indexable(op, multi_bilinear_output_shape(xs, us, vs));
  return parse_activation(activation, op);
}

Activation check_multi_bilinear_backward_inputs(const char* op, const at::Tensor& grad_y, at::TensorList xs,
                                                at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                                c10::string_view activation, const c10::List<bool>& output_mask) {
  const Activation parsed = check_multi_bilinear_inputs(op, xs, us, vs, std::nullopt, activation);
  TORCH_CHECK(output_mask.size() == 3 * xs.size() + 1, op, ": output_mask must have 3·len(xs) + 1 = ",
              3 * xs.size() + 1, " entries ([dxs…, dus…, dvs…, dbias]), got ", output_mask.size());
  const auto expected = multi_bilinear_output_shape(xs, us, vs);
  check_output_like(op, "y", y, "xs[0]", xs[0], expected);
  check_output_like(op, "grad_y", grad_y, "xs[0]", xs[0], expected);
  return parsed;
}

std::vector<at::Tensor> gradients_in_mask_order(const std::vector<at::Tensor>& grad_xs,
                                                const std::vector<at::Tensor>& grad_us,
                                                const std::vector<at::Tensor>& grad_vs, const at::Tensor& grad_bias) {
  std::vector<at::Tensor> requested;
  for (const auto* list : {&grad_xs, &grad_us, &grad_vs})
    for (const at::Tensor& grad : *list)
      if (grad.defined()) requested.push_back(grad);
  if (grad_bias.defined()) requested.push_back(grad_bias);
  return requested;
}

c10::SymDimVector multi_bilinear_output_shape(at::TensorList xs, at::TensorList us, at::TensorList vs) {
  return bilinear_output_shape(xs[0], us[0], vs[0]);
}

}  // namespace matnet
