// A LibTorch program (no Python) that calls matnet::bilinear through the dispatcher and gets its
// gradients, and a second derivative (a Hessian-vector product), from the autograd registered in
// C++, checked against the same layer written with ATen ops. Built by examples/cpp/CMakeLists.txt.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <iostream>

#include <matnet/matnet.h>

int main() {
  at::manual_seed(0);
  const auto options = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor x = at::randn({16, 28, 28}, options);
  const at::Tensor u = (at::randn({20, 28}, options) / 28.0).requires_grad_();
  const at::Tensor v = (at::randn({20, 28}, options) / 28.0).requires_grad_();
  const at::Tensor b = at::zeros({20, 20}, options).requires_grad_();

  // The fused operator, and the reference σ(U X Vᵀ + B) on copies of the same leaves.
  const at::Tensor y = matnet::bilinear(x, u, v, b, "sigmoid");
  const at::Tensor u_ref = u.detach().clone().requires_grad_();
  const at::Tensor v_ref = v.detach().clone().requires_grad_();
  const at::Tensor b_ref = b.detach().clone().requires_grad_();
  const at::Tensor y_ref = at::sigmoid(at::matmul(at::matmul(u_ref, x), v_ref.t()) + b_ref);

  // create_graph: the gradients are differentiable, so H·d = ∂(∇L · d)/∂θ for a direction d.
  const auto grads = torch::autograd::grad({y.square().sum()}, {u, v, b}, {}, std::nullopt, /*create_graph=*/true);
  const auto grads_ref =
      torch::autograd::grad({y_ref.square().sum()}, {u_ref, v_ref, b_ref}, {}, std::nullopt, /*create_graph=*/true);
  at::Tensor directional = at::zeros({}, options), directional_ref = at::zeros({}, options);
  for (size_t k = 0; k < grads.size(); ++k) {
    const at::Tensor direction = at::ones_like(grads[k]) / static_cast<double>(k + 1);
    directional = directional + (grads[k] * direction).sum();
    directional_ref = directional_ref + (grads_ref[k] * direction).sum();
  }
  const auto hessian_vector = torch::autograd::grad({directional}, {u, v, b});
  const auto hessian_vector_ref = torch::autograd::grad({directional_ref}, {u_ref, v_ref, b_ref});

  double worst = (y - y_ref).abs().max().item<double>();
  for (size_t k = 0; k < grads.size(); ++k) {
    worst = std::max(worst, (grads[k] - grads_ref[k]).abs().max().item<double>());
    worst = std::max(worst, (hessian_vector[k] - hessian_vector_ref[k]).abs().max().item<double>());
  }
  std::cout << "matnet::bilinear from C++: output, gradients and Hessian-vector product in u, v, bias match the ATen reference "
            << "(max abs difference " << worst << ")" << std::endl;
  return worst < 1e-10 ? 0 : 1;
}
