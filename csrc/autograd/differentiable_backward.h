// The backward of the operator family as a differentiable function of (grad_y, inputs, y), for
// second derivatives: what the autograd kernels run when a graph of the gradients is being built
// (create_graph=True), and what torch.func differentiates (matnet_torch/_autograd.py, through the
// operator matnet::differentiable_backward). docs/design.md §1, §2.
#pragma once

#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "../activation.h"

namespace matnet::autograd {

// All 3·D + 1 gradients [dxs…, dus…, dvs…, dbias], undefined where mask is false.
std::vector<at::Tensor> differentiable_backward(const at::Tensor& grad_y, at::TensorList xs, at::TensorList us,
                                                at::TensorList vs, const at::Tensor& y, Activation activation,
                                                const c10::List<bool>& mask);

}  // namespace matnet::autograd
