// Autograd for matnet::multi_bilinear, registered at the Autograd key in C++ (LibTorch programs
// get gradients too), with the public torch::autograd::Function API only. Forward saves the
// inputs, U_j, V_j and y; the backward operator recomputes everything else (design.md §2).
#include <torch/autograd.h>
#include <torch/library.h>

#include "../matnet_ops.h"

namespace matnet::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The backward operator, whose own derivative is refused: where a graph of the gradients is built
// (create_graph=True), asking for a second derivative raises.
class MultiBilinearBackwardFunction : public torch::autograd::Function<MultiBilinearBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* /*ctx*/, const at::Tensor& grad_y, at::TensorList xs,
                               at::TensorList us, at::TensorList vs, const at::Tensor& y,
                               c10::string_view activation, const c10::List<bool>& mask) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return matnet::multi_bilinear_backward(grad_y, xs, us, vs, y, activation, mask);
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grad_outputs*/) {
    TORCH_CHECK(false,
                "matnet::multi_bilinear_backward: double backward (a gradient of a gradient) is not supported; "
                "use matnet_torch.reference.multi_bilinear where second derivatives are needed");
  }
};

std::vector<at::Tensor> multi_bilinear_backward_autograd(const at::Tensor& grad_y, at::TensorList xs,
                                                         at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                                         c10::string_view activation, const c10::List<bool>& mask) {
  return MultiBilinearBackwardFunction::apply(grad_y, xs, us, vs, y, activation, mask);
}

class MultiBilinearFunction : public torch::autograd::Function<MultiBilinearFunction> {
 public:
  // Inputs in autograd's order: xs[0 … D−1], us[…], vs[…], bias (if any), activation.
  static at::Tensor forward(AutogradContext* ctx, at::TensorList xs, at::TensorList us, at::TensorList vs,
                            const std::optional<at::Tensor>& bias, c10::string_view activation) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      y = matnet::multi_bilinear(xs, us, vs, bias, activation);
    }
    std::vector<at::Tensor> saved(xs.begin(), xs.end());
    saved.insert(saved.end(), us.begin(), us.end());
    saved.insert(saved.end(), vs.begin(), vs.end());
    saved.push_back(y);
    ctx->save_for_backward(saved);
    ctx->saved_data["inputs"] = static_cast<int64_t>(xs.size());
    ctx->saved_data["activation"] = std::string(activation);
    ctx->saved_data["has_bias"] = bias.has_value();
    return y;
  }

  // Through the dispatcher, so the backward operator's autograd (above) applies when create_graph=True.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const auto inputs = static_cast<size_t>(ctx->saved_data["inputs"].toInt());
    const at::TensorList xs(saved.data(), inputs), us(saved.data() + inputs, inputs),
        vs(saved.data() + 2 * inputs, inputs);
    c10::List<bool> mask;
    for (size_t k = 0; k < 3 * inputs; ++k) mask.push_back(ctx->needs_input_grad(k));
    mask.push_back(ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(3 * inputs));
    const variable_list requested = matnet::multi_bilinear_backward(
        grad_outputs[0], xs, us, vs, saved[3 * inputs], ctx->saved_data["activation"].toStringRef(), mask);
    // One gradient per input of forward: the requested ones in order, undefined elsewhere and for
    // the activation string.
    variable_list grads(3 * inputs + 2);
    for (size_t k = 0, next = 0; k < mask.size(); ++k)
      if (mask[k]) grads[k] = requested.at(next++);
    return grads;
  }
};

at::Tensor multi_bilinear_autograd(at::TensorList xs, at::TensorList us, at::TensorList vs,
                                   const std::optional<at::Tensor>& bias, c10::string_view activation) {
  return MultiBilinearFunction::apply(xs, us, vs, bias, activation);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, Autograd, m) {
  m.impl("multi_bilinear", &multi_bilinear_autograd);
  m.impl("multi_bilinear_backward", &multi_bilinear_backward_autograd);
}

}  // namespace matnet::autograd
