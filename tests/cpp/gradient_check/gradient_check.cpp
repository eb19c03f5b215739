// Gradients of matnet::MatNetLayer from C++ (the autograd registered in the library) against central
// finite differences of the same layer, in float64, and the module's error for a bad option. Prints
// the largest difference; exit status 1 if any exceeds the tolerance or the error is not raised.
#include <matnet/matnet.h>

#include <cmath>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace {

// L(θ) = Σ W ⊙ layer(X): a loss whose gradient with respect to the output is the fixed W.
double loss(matnet::MatNetLayer& layer, const torch::Tensor& x, const torch::Tensor& weights) {
  return (layer(x) * weights).sum().item<double>();
}

// The error a C++ user gets for an unknown activation, as in Python: a ValueError naming the module.
bool rejects_unknown_activation() {
  try {
    matnet::MatNetLayer layer(matnet::MatNetLayerOptions({2, 2}, {2, 2}).activation("swish"));
  } catch (const c10::ValueError& error) {
    return std::string(error.what()).find("matnet::MatNetLayer: unknown activation 'swish'") != std::string::npos;
  }
  return false;
}

}  // namespace

int main() {
  torch::manual_seed(0);
  matnet::MatNetLayer layer(matnet::MatNetLayerOptions({5, 4}, {3, 2}).activation("tanh"));
  layer->to(torch::kDouble);
  const torch::Tensor x = torch::randn({2, 3, 5, 4}, torch::kDouble).requires_grad_();
  const torch::Tensor weights = torch::randn({2, 3, 3, 2}, torch::kDouble);
  (layer(x) * weights).sum().backward();

  // Central differences: truncation error h²/6·|L'''| ~ 1e-12 and rounding error ε|L|/h ~ 1e-10 for
  // h = 1e-6, so analytic and numeric slopes of these O(1) quantities agree to 1e-7 with ample margin.
  const double step = 1e-6, tolerance = 1e-7;
  std::vector<std::pair<std::string, torch::Tensor>> leaves = {
      {"u", layer->u}, {"v", layer->v}, {"bias", layer->bias}, {"x", x}};
  double worst = 0.0;
  torch::NoGradGuard no_grad;
  for (auto& [name, leaf] : leaves) {
    auto values = leaf.view(-1);
    auto gradient = leaf.grad().view(-1);
    for (int64_t k = 0; k < values.numel(); ++k) {
      const double original = values[k].item<double>();
      values[k] = original + step;
      const double above = loss(layer, x, weights);
      values[k] = original - step;
      const double below = loss(layer, x, weights);
      values[k] = original;
      worst = std::max(worst, std::abs(gradient[k].item<double>() - (above - below) / (2 * step)));
    }
  }
  std::cout << *layer << ": largest difference between autograd and finite-difference gradients "
            << worst << " (tolerance " << tolerance << ")" << std::endl;
  if (!rejects_unknown_activation()) {
    std::cout << "matnet::MatNetLayer accepted the activation 'swish'" << std::endl;
    return 1;
  }
  return worst <= tolerance ? 0 : 1;
}
