#include "activation_aten.h"

#include <ATen/ops/relu.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/sigmoid_backward.h>
#include <ATen/ops/tanh.h>
#include <ATen/ops/tanh_backward.h>
#include <ATen/ops/threshold_backward.h>

namespace matnet {

void activate_(at::Tensor& y, Activation activation) {
  switch (activation) {
    case Activation::Sigmoid:
      at::sigmoid_(y);
      break;
    case Activation::Tanh:
      at::tanh_(y);
      break;
    case Activation::Relu:
      at::relu_(y);
      break;
    case Activation::Identity:
      break;
  }
}

at::Tensor activation_grad(const at::Tensor& grad_y, const at::Tensor& y, Activation activation) {
  switch (activation) {
    case Activation::Sigmoid:
      return at::sigmoid_backward(grad_y, y);
    case Activation::Tanh:
      return at::tanh_backward(grad_y, y);
    case Activation::Relu:
      return at::threshold_backward(grad_y, y, 0);
    case Activation::Identity:
      break;
  }
  return grad_y;
}

}  // namespace matnet
