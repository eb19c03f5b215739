// CUDA kernels of matnet::bilinear and matnet::bilinear_backward, first version: the products run
// as batched cuBLAS GEMMs through ATen, bias and σ (forward) and σ' (backward) in one fused
// element-wise kernel each (bilinear_kernels.cu). float32, float64, float16 and bfloat16.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "bilinear_kernels.h"

namespace matnet::cuda {
namespace {

// ATen's 16-bit types have the layout of CUDA's; the kernels are written for the latter.
template <typename T> struct KernelType { using type = T; };
template <> struct KernelType<at::Half> { using type = __half; };
template <> struct KernelType<at::BFloat16> { using type = __nv_bfloat16; };

template <typename T>
auto kernel_ptr(const at::Tensor& t) {
  return reinterpret_cast<typename KernelType<T>::type*>(t.data_ptr<T>());
}

void check_on_cuda(const char* op, const at::Tensor& x) {
  TORCH_CHECK(x.is_cuda(), op, ": expected CUDA tensors, got ", x.device());
}

at::Tensor bilinear_cuda(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                         const std::optional<at::Tensor>& bias, c10::string_view activation) {
  constexpr const char* op = "matnet::bilinear";
  const Activation parsed = check_bilinear_inputs(op, x, u, v, bias, activation);
  check_on_cuda(op, x);
  const c10::cuda::CUDAGuard device_guard(x.device());
  const BilinearSizes sizes = bilinear_sizes(x, u, v);
  const auto [batch, m, n, p, q] = sizes;
  const at::Tensor x3 = x.reshape({batch, p, q});
  // Z_i = U X_i Vᵀ, associated the cheaper way; matmul returns a fresh tensor.
  at::Tensor z = sizes.right_product_first() ? at::matmul(u, at::matmul(x3, v.t())) : at::matmul(at::matmul(u, x3), v.t());
  z = z.contiguous();
  const at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    C10_CUDA_CHECK(launch_bias_activation_forward(kernel_ptr<scalar_t>(z),
                                                  bias_c.defined() ? kernel_ptr<scalar_t>(bias_c) : nullptr,
                                                  z.numel(), m * n, parsed, c10::cuda::getCurrentCUDAStream()));
  });
  return z.view_symint(bilinear_output_shape(x, u, v));
}

// Δ_i = G_i ⊙ σ'(Y_i); dX_i = Uᵀ Δ_i V, dU = Σ_i (Δ_i V) X_iᵀ, dV = Σ_i Δ_iᵀ (U X_i), dB = Σ_i Δ_i.
BilinearGradients bilinear_backward_cuda(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                         const at::Tensor& v, const at::Tensor& y, c10::string_view activation,
                                         BilinearOutputMask mask) {
  constexpr const char* op = "matnet::bilinear_backward";
  const Activation parsed = check_bilinear_backward_inputs(op, grad_y, x, u, v, y, activation);
  check_on_cuda(op, x);
  const c10::cuda::CUDAGuard device_guard(x.device());
  const auto [batch, m, n, p, q] = bilinear_sizes(x, u, v);
  const at::Tensor g = grad_y.contiguous(), y_c = y.contiguous();
  at::Tensor delta = at::empty({batch, m, n}, y.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    C10_CUDA_CHECK(launch_activation_backward(kernel_ptr<scalar_t>(g), kernel_ptr<scalar_t>(y_c),
                                              kernel_ptr<scalar_t>(delta), delta.numel(), parsed,
                                              c10::cuda::getCurrentCUDAStream()));
  });
  const at::Tensor x3 = x.reshape({batch, p, q});
  at::Tensor grad_x, grad_u, grad_v, grad_bias;
  if (mask[0] || mask[1]) {
    const at::Tensor s = at::matmul(delta, v);  // S_i = Δ_i V, (batch, m, q)
    if (mask[0]) grad_x = at::matmul(u.t(), s).reshape(x.sizes());
    if (mask[1]) grad_u = at::einsum("imq,ipq->mp", {s, x3});
  }
  if (mask[2]) {
    // dV = Σ_i Δ_iᵀ W_i with W_i = U X_i: one GEMM contracting over (i, a).
    const at::Tensor w = at::matmul(u, x3);
    grad_v = delta.reshape({batch * m, n}).t().mm(w.reshape({batch * m, q}));
  }
  if (mask[3]) grad_bias = delta.sum(0);
  return {grad_x, grad_u, grad_v, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CUDA, m) {
  m.impl("bilinear", &bilinear_cuda);
  m.impl("bilinear_backward", &bilinear_backward_cuda);
}

}  // namespace matnet::cuda
