// A LibTorch program (no Python) that calls matnet::bilinear through the dispatcher and gets its
// gradients from the autograd registered in C++, checked against the same layer written with ATen
// ops. Build from the repository root (see README):
//
//   TORCH=$(python -c "import torch, os; print(os.path.dirname(torch.__file__))")
//   g++ -std=c++20 -I$TORCH/include -I$TORCH/include/torch/csrc/api/include
//       examples/cpp/bilinear_autograd.cpp -o bilinear_autograd -L$TORCH/lib -Wl,--no-as-needed
//       -ltorch -ltorch_cpu -lc10 -ltorch_cuda -lc10_cuda matnet_torch/_C*.so
//       -Wl,-rpath,$TORCH/lib:$PWD/matnet_torch
//
// (one command; -ltorch_cuda -lc10_cuda only with a CUDA build of torch and matnet_torch.) The
// program's run path reaches only its direct dependencies, so torch's CUDA libraries, which the
// operator library needs, are linked directly and ahead of it; they bring in the CUDA runtime
// through their own run paths.
#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <iostream>

#include "../../csrc/matnet_ops.h"

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

  const auto grads = torch::autograd::grad({y.square().sum()}, {u, v, b});
  const auto grads_ref = torch::autograd::grad({y_ref.square().sum()}, {u_ref, v_ref, b_ref});

  double worst = (y - y_ref).abs().max().item<double>();
  for (size_t k = 0; k < grads.size(); ++k) worst = std::max(worst, (grads[k] - grads_ref[k]).abs().max().item<double>());
  std::cout << "matnet::bilinear from C++: output and gradients of u, v, bias match the ATen reference "
            << "(max abs difference " << worst << ")" << std::endl;
  return worst < 1e-10 ? 0 : 1;
}
