// Autograd of the operator family, registered at the Autograd key in C++ (LibTorch programs get
// gradients as well as Python), with the public torch::autograd::Function API only, so it compiles
// against every supported torch. Forward saves the inputs, U_j, V_j and y only; the backward
// operator recomputes everything else from them (docs/design.md §1, §2). Both call the public operator
// the call came through (family_kernels.h), so bilinear's graph holds bilinear_backward and
// multi_bilinear's multi_bilinear_backward.
#include <torch/autograd.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "../family_kernels.h"
#include "differentiable_backward.h"

namespace matnet::autograd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

const FamilyMember& member(bool lists) { return lists ? kMultiBilinear : kBilinear; }

// The backward operator, called directly, as a differentiable function whose own derivative is
// refused (the forward's autograd below does not go through it when a second derivative is wanted).
// Function outputs must be defined tensors, so forward returns only the gradients the mask asks for.
class BackwardFunction : public torch::autograd::Function<BackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                               at::TensorList vs, const at::Tensor& y, c10::string_view activation,
                               const c10::List<bool>& mask, bool lists) {
    ctx->saved_data["lists"] = lists;
    at::AutoDispatchBelowADInplaceOrView guard;
    return requested_only(call_backward(member(lists), grad_y, xs, us, vs, y, activation, mask));
  }

  static variable_list backward(AutogradContext* ctx, variable_list /*grad_outputs*/) {
    const FamilyMember& op = member(ctx->saved_data["lists"].toBool());
    TORCH_CHECK(false, op.backward, ": double backward through the backward operator called directly is not "
                "supported; differentiate ", op.forward, " with create_graph=True instead (its backward is "
                "differentiable)");
  }
};

std::vector<at::Tensor> backward_autograd(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                          at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                          c10::string_view activation, const c10::List<bool>& mask) {
  return in_mask_order(mask, BackwardFunction::apply(grad_y, xs, us, vs, y, activation, mask, op.lists));
}

class ForwardFunction : public torch::autograd::Function<ForwardFunction> {
 public:
  // Inputs in autograd's order: xs[0 … D−1], us[…], vs[…], bias (if any), activation, lists.
  static at::Tensor forward(AutogradContext* ctx, at::TensorList xs, at::TensorList us, at::TensorList vs,
                            const std::optional<at::Tensor>& bias, c10::string_view activation, bool lists) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      y = call_forward(member(lists), xs, us, vs, bias, activation);
    }
    std::vector<at::Tensor> saved(xs.begin(), xs.end());
    saved.insert(saved.end(), us.begin(), us.end());
    saved.insert(saved.end(), vs.begin(), vs.end());
    saved.push_back(y);
    ctx->save_for_backward(saved);
    ctx->saved_data["inputs"] = static_cast<int64_t>(xs.size());
    ctx->saved_data["activation"] = std::string(activation);
    ctx->saved_data["has_bias"] = bias.has_value();
    ctx->saved_data["lists"] = lists;
    return y;
  }

  // The fused backward operator; where a graph of the gradients is built (create_graph=True, so grad
  // mode is on here), the differentiable backward instead, so the gradients can be differentiated again.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const auto inputs = static_cast<size_t>(ctx->saved_data["inputs"].toInt());
    const at::TensorList xs(saved.data(), inputs), us(saved.data() + inputs, inputs),
        vs(saved.data() + 2 * inputs, inputs);
    c10::List<bool> mask;
    for (size_t k = 0; k < 3 * inputs; ++k) mask.push_back(ctx->needs_input_grad(k));
    mask.push_back(ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(3 * inputs));
    const FamilyMember& op = member(ctx->saved_data["lists"].toBool());
    const std::string& activation = ctx->saved_data["activation"].toStringRef();
    const at::Tensor& y = saved[3 * inputs];
    variable_list grads =
        at::GradMode::is_enabled()
            ? differentiable_backward(grad_outputs[0], xs, us, vs, y, parse_activation(activation, op.backward), mask)
            : call_backward(op, grad_outputs[0], xs, us, vs, y, activation, mask);
    // One gradient per input of forward: none for the activation string and the lists flag.
    grads.resize(3 * inputs + 3);
    return grads;
  }
};

// Forward-mode AD through dual tensors (torch.autograd.forward_ad) needs a jvp, which C++ autograd
// Functions cannot have; torch.func.jvp and jacfwd reach the operators' Python autograd.Function
// (matnet_torch/_autograd.py), which has one.
void refuse_dual_tensors(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                         const std::optional<at::Tensor>& bias) {
  bool dual = bias.has_value() && bias->_fw_grad(/*level=*/0).defined();
  for (at::TensorList list : {xs, us, vs})
    for (const at::Tensor& t : list) dual = dual || t._fw_grad(/*level=*/0).defined();
  TORCH_CHECK(!dual, op.forward, ": forward-mode AD with dual tensors (torch.autograd.forward_ad) is not supported; "
              "use torch.func.jvp or torch.func.jacfwd, which are");
}

at::Tensor forward_autograd(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                            const std::optional<at::Tensor>& bias, c10::string_view activation) {
  refuse_dual_tensors(op, xs, us, vs, bias);
  return ForwardFunction::apply(xs, us, vs, bias, activation, op.lists);
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, Autograd, m) { register_family<&forward_autograd, &backward_autograd>(m); }

}  // namespace matnet::autograd
