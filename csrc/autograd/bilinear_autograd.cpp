// Autograd for matnet::bilinear, registered at the Autograd key in C++ so that LibTorch programs
// get gradients as well as Python. Forward saves x, u, v and y only; the backward operator
// recomputes everything else from them (design.md §1). Written with the public
// torch::autograd::Function API only, so it compiles against every supported torch.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "../matnet_ops.h"

namespace matnet::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The backward operator as a differentiable function whose own derivative is refused: where a
// graph of the gradients is built (create_graph=True), asking for a second derivative raises.
// Function outputs must be defined tensors, so forward returns only the gradients the mask asks for.
class BilinearBackwardFunction : public torch::autograd::Function<BilinearBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* /*ctx*/, const at::Tensor& grad_y, const at::Tensor& x,
                               const at::Tensor& u, const at::Tensor& v, const at::Tensor& y,
                               c10::string_view activation, BilinearOutputMask mask) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad_x, grad_u, grad_v, grad_bias] = matnet::bilinear_backward(grad_y, x, u, v, y, activation, mask);
    variable_list requested;
    for (const at::Tensor& grad : {grad_x, grad_u, grad_v, grad_bias}) {
      if (grad.defined()) requested.push_back(grad);
    }
    return requested;
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grad_outputs*/) {
    TORCH_CHECK(false,
                "matnet::bilinear_backward: double backward (a gradient of a gradient) is not supported; use "
                "matnet_torch.reference.bilinear where second derivatives are needed");
  }
};

BilinearGradients bilinear_backward_autograd(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                             const at::Tensor& v, const at::Tensor& y,
                                             c10::string_view activation, const c10::List<bool>& output_mask) {
  const BilinearOutputMask mask = bilinear_output_mask("matnet::bilinear_backward", output_mask);
  const variable_list requested = BilinearBackwardFunction::apply(grad_y, x, u, v, y, activation, mask);
  std::array<at::Tensor, 4> grads;
  for (size_t k = 0, next = 0; k < grads.size(); ++k) {
    if (mask[k]) grads[k] = requested.at(next++);
  }
  return {grads[0], grads[1], grads[2], grads[3]};
}

class BilinearFunction : public torch::autograd::Function<BilinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                            const std::optional<at::Tensor>& bias, c10::string_view activation) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      y = matnet::bilinear(x, u, v, bias, activation);
    }
    ctx->save_for_backward({x, u, v, y});
    ctx->saved_data["activation"] = std::string(activation);
    ctx->saved_data["has_bias"] = bias.has_value();
    return y;
  }

  // Through the dispatcher, so the backward operator's own autograd (above) applies when
  // create_graph=True.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const std::string activation = ctx->saved_data["activation"].toStringRef();
    const BilinearOutputMask mask = {ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(2),
                                     ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(3)};
    auto [grad_x, grad_u, grad_v, grad_bias] =
        matnet::bilinear_backward(grad_outputs[0], saved[0], saved[1], saved[2], saved[3], activation, mask);
    return {grad_x, grad_u, grad_v, grad_bias, at::Tensor()};
  }
};

at::Tensor bilinear_autograd(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                             const std::optional<at::Tensor>& bias, c10::string_view activation) {
  return BilinearFunction::apply(x, u, v, bias, activation);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, Autograd, m) {
  m.impl("bilinear", &bilinear_autograd);
  m.impl("bilinear_backward", &bilinear_backward_autograd);
}

}  // namespace matnet::autograd
