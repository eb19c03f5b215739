// matnet::MatNetLayer, the bilinear layer Y = σ(U X Vᵀ + B) as a torch::nn module, the C++ twin of
// matnet_torch.nn.MatNetLayer: same parameters (u, v, bias), same initialisation, same forward.
//
//   matnet::MatNetLayer layer(matnet::MatNetLayerOptions({28, 28}, {20, 20}).activation("sigmoid"));
//   torch::Tensor y = layer(x);  // x (..., 28, 28) -> y (..., 20, 20), differentiable
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <ostream>
#include <string>

#include "ops.h"

namespace matnet {

// (rows, columns) of a matrix.
using MatrixShape = std::array<int64_t, 2>;

struct MatNetLayerOptions {
  // in_shape (p, q) of the input matrices, out_shape (m, n) of the output matrices.
  MatNetLayerOptions(MatrixShape in_shape, MatrixShape out_shape) : in_shape_(in_shape), out_shape_(out_shape) {}
  TORCH_ARG(MatrixShape, in_shape);
  TORCH_ARG(MatrixShape, out_shape);
  // "identity", "sigmoid", "tanh" or "relu".
  TORCH_ARG(std::string, activation) = "sigmoid";
  // Whether the layer has the bias B (m×n).
  TORCH_ARG(bool, bias) = true;
};

class MATNET_API MatNetLayerImpl : public torch::nn::Cloneable<MatNetLayerImpl> {
 public:
  MatNetLayerImpl(MatrixShape in_shape, MatrixShape out_shape)
      : MatNetLayerImpl(MatNetLayerOptions(in_shape, out_shape)) {}
  explicit MatNetLayerImpl(MatNetLayerOptions options);

  // Validates the options (errors name matnet::MatNetLayer, the option and its value), registers
  // u (m×p), v (n×q) and bias (m×n) and initialises them.
  void reset() override;

  // U ~ N(0, 1/p), V ~ N(0, g²/q) with g the gain of the activation, B = 0: Var(z) = g² Var(x)
  // (the reasoning is in matnet_torch.nn.MatNetLayer's docstring).
  void reset_parameters();

  // x (..., p, q) -> σ(U X Vᵀ + B) of shape (..., m, n).
  torch::Tensor forward(const torch::Tensor& x);

  void pretty_print(std::ostream& stream) const override;

  MatNetLayerOptions options;
  torch::Tensor u, v, bias;  // bias is undefined when options.bias() is false
};

TORCH_MODULE(MatNetLayer);

}  // namespace matnet
