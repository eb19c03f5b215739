// The one place where the two public operators of the family meet its kernels. A dispatch key's
// kernels are written once, for lists of inputs:
//
//   at::Tensor forward(const FamilyMember&, xs, us, vs, bias, activation)
//   std::vector<at::Tensor> backward(const FamilyMember&, grad_y, xs, us, vs, y, activation, mask)
//
// backward returns all 3·D + 1 gradients [dxs…, dus…, dvs…, dbias], undefined where the mask is
// false. register_family binds them to bilinear, bilinear_backward (x, u, v as one-element lists;
// the four gradients as a tuple) and multi_bilinear, multi_bilinear_backward (the requested
// gradients only, in the mask's order), so no kernel exists twice.
#pragma once

#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "include/matnet/ops.h"
#include "operator_family.h"

namespace matnet {

using FamilyForward = at::Tensor (*)(const FamilyMember&, at::TensorList, at::TensorList, at::TensorList,
                                     const std::optional<at::Tensor>&, c10::string_view);
using FamilyBackward = std::vector<at::Tensor> (*)(const FamilyMember&, const at::Tensor&, at::TensorList,
                                                   at::TensorList, at::TensorList, const at::Tensor&,
                                                   c10::string_view, const c10::List<bool>&);

// The defined entries of `grads`, in order: multi_bilinear_backward's result.
inline std::vector<at::Tensor> requested_only(const std::vector<at::Tensor>& grads) {
  std::vector<at::Tensor> requested;
  for (const at::Tensor& grad : grads)
    if (grad.defined()) requested.push_back(grad);
  return requested;
}

// The inverse: all mask.size() gradients, the requested ones in order, undefined elsewhere.
inline std::vector<at::Tensor> in_mask_order(const c10::List<bool>& mask, const std::vector<at::Tensor>& requested) {
  std::vector<at::Tensor> grads(mask.size());
  for (size_t k = 0, next = 0; k < mask.size(); ++k)
    if (mask[k]) grads[k] = requested.at(next++);
  return grads;
}

// Binds `forward` to bilinear and multi_bilinear.
template <FamilyForward forward>
void register_forwards(torch::Library& m) {
  m.impl("bilinear", [](const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                        const std::optional<at::Tensor>& bias, c10::string_view activation) {
    return forward(kBilinear, x, u, v, bias, activation);
  });
  m.impl("multi_bilinear", [](at::TensorList xs, at::TensorList us, at::TensorList vs,
                              const std::optional<at::Tensor>& bias, c10::string_view activation) {
    return forward(kMultiBilinear, xs, us, vs, bias, activation);
  });
}

// Binds `forward` and `backward` to all four operators.
template <FamilyForward forward, FamilyBackward backward>
void register_family(torch::Library& m) {
  register_forwards<forward>(m);
  m.impl("bilinear_backward", [](const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                 const at::Tensor& v, const at::Tensor& y, c10::string_view activation,
                                 const c10::List<bool>& mask) {
    const std::vector<at::Tensor> grads = backward(kBilinear, grad_y, x, u, v, y, activation, mask);
    return std::make_tuple(grads[0], grads[1], grads[2], grads[3]);
  });
  m.impl("multi_bilinear_backward", [](const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                       at::TensorList vs, const at::Tensor& y, c10::string_view activation,
                                       const c10::List<bool>& mask) {
    return requested_only(backward(kMultiBilinear, grad_y, xs, us, vs, y, activation, mask));
  });
}

// Calls the public operator `op` came through (below the current dispatch key, for the autograd and
// autocast kernels), with list arguments.
inline at::Tensor call_forward(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                               const std::optional<at::Tensor>& bias, c10::string_view activation) {
  return op.lists ? matnet::multi_bilinear(xs, us, vs, bias, activation)
                  : matnet::bilinear(xs[0], us[0], vs[0], bias, activation);
}

// As call_forward for the backward operator; all 3·D + 1 gradients, undefined where mask is false.
inline std::vector<at::Tensor> call_backward(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                             at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                             c10::string_view activation, const c10::List<bool>& mask) {
  if (!op.lists) {
    // The mask as it came (its length is the kernel's to check, in its own words).
    static const auto bilinear_backward =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("matnet::bilinear_backward", "")
            .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                c10::string_view, const c10::List<bool>&)>();
    auto [grad_x, grad_u, grad_v, grad_bias] = bilinear_backward.call(grad_y, xs[0], us[0], vs[0], y, activation, mask);
    return {grad_x, grad_u, grad_v, grad_bias};
  }
  return in_mask_order(mask, matnet::multi_bilinear_backward(grad_y, xs, us, vs, y, activation, mask));
}

}  // namespace matnet
