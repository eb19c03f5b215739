#include "activation_aten.h"

#include <ATen/ops/empty_like.h>
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

void activation_grad_out(at::Tensor& out, const at::Tensor& grad_y, const at::Tensor& y, Activation activation) {
  switch (activation) {
    case Activation::Sigmoid:
      at::sigmoid_backward_out(out, grad_y, y);
      break;
    case Activation::Tanh:
      at::tanh_backward_out(out, grad_y, y);
      break;
    case Activation::Relu:
      at::threshold_backward_out(out, grad_y, y, 0);
      break;
    case Activation::Identity:
      out.copy_(grad_y);
      break;
  }
}

at::Tensor activation_backward(const at::Tensor& grad_y, const at::Tensor& y, Activation activation) {
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

at::Tensor activation_grad(const at::Tensor& grad_y, const at::Tensor& y, Activation activation) {
  if (activation == Activation::Identity) return grad_y.contiguous();
  at::Tensor grad_z = at::empty_like(grad_y, at::MemoryFormat::Contiguous);
  activation_grad_out(grad_z, grad_y, y, activation);
  return grad_z;
}

}  // namespace matnet
