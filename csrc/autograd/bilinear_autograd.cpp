// Autograd for matnet::bilinear, registered at the Autograd key in C++ so that LibTorch programs
// get gradients as well as Python. Forward saves x, u, v and y only; the backward operator
// recomputes everything else from them (design.md §1).
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "../matnet_ops.h"

namespace matnet::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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

// The backward operator is not differentiated again: where its result would need a graph
// (create_graph=True), the outputs get an Error node that raises if a second derivative is asked.
BilinearGradients bilinear_backward_autograd(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                             const at::Tensor& v, const at::Tensor& y,
                                             c10::string_view activation, BilinearOutputMask mask) {
  BilinearGradients grads;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    grads = matnet::bilinear_backward(grad_y, x, u, v, y, activation, mask);
  }
  if (torch::autograd::compute_requires_grad(grad_y, x, u, v, y)) {
    auto node = c10::make_intrusive<torch::autograd::Error>(
        "matnet::bilinear_backward: double backward (a gradient of a gradient) is not supported; use "
        "matnet_torch.reference.bilinear where second derivatives are needed",
        torch::autograd::collect_next_edges(grad_y, x, u, v, y));
    std::vector<at::Tensor> outputs = {std::get<0>(grads), std::get<1>(grads), std::get<2>(grads),
                                       std::get<3>(grads)};
    torch::autograd::set_history(outputs, node);
  }
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, Autograd, m) {
  m.impl("bilinear", &bilinear_autograd);
  m.impl("bilinear_backward", &bilinear_backward_autograd);
}

}  // namespace matnet::autograd
