// matnet::MatNetLayer (csrc/include/matnet/layer.h).
#include <torch/nn/init.h>

#include <cmath>

#include "../bilinear_checks.h"
#include "../include/matnet/layer.h"

namespace matnet {
namespace {

constexpr const char* kOwner = "matnet::MatNetLayer";

// torch.nn.init.calculate_gain of the activation: the factor by which σ shrinks the variance it is fed.
double gain(Activation activation) {
  switch (activation) {
    case Activation::Tanh: return 5.0 / 3.0;
    case Activation::Relu: return std::sqrt(2.0);
    default: return 1.0;  // identity and sigmoid
  }
}

void check_shape(const char* name, const MatrixShape& shape) {
  TORCH_CHECK_VALUE(shape[0] >= 1 && shape[1] >= 1, kOwner, ": ", name,
                    " must be two positive sizes (rows, columns), got (", shape[0], ", ", shape[1], ")");
}

}  // namespace

MatNetLayerImpl::MatNetLayerImpl(MatNetLayerOptions options) : options(std::move(options)) { reset(); }

void MatNetLayerImpl::reset() {
  check_shape("in_shape", options.in_shape());
  check_shape("out_shape", options.out_shape());
  parse_activation(options.activation(), kOwner);
  const auto [p, q] = options.in_shape();
  const auto [m, n] = options.out_shape();
  u = register_parameter("u", torch::empty({m, p}));
  v = register_parameter("v", torch::empty({n, q}));
  bias = options.bias() ? register_parameter("bias", torch::empty({m, n})) : torch::Tensor();
  reset_parameters();
}

void MatNetLayerImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const auto [p, q] = options.in_shape();
  u.normal_(0.0, 1.0 / std::sqrt(double(p)));
  v.normal_(0.0, gain(parse_activation(options.activation(), kOwner)) / std::sqrt(double(q)));
  if (bias.defined()) bias.zero_();
}

torch::Tensor MatNetLayerImpl::forward(const torch::Tensor& x) {
  return bilinear(x, u, v, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt, options.activation());
}

void MatNetLayerImpl::pretty_print(std::ostream& stream) const {
  const auto [p, q] = options.in_shape();
  const auto [m, n] = options.out_shape();
  stream << "matnet::MatNetLayer(in_shape=(" << p << ", " << q << "), out_shape=(" << m << ", " << n
         << "), activation=" << options.activation() << ", bias=" << (options.bias() ? "true" : "false") << ")";
}

}  // namespace matnet
