// CUDA kernels of matnet::bilinear and matnet::bilinear_backward. Two paths:
//  - fused (fused_forward.cu, fused_backward.cu): one kernel per direction, for matrices with sides
//    up to kLongestFusedSide (the layers of the paper) whose working set fits in a thread block's
//    shared memory;
//  - batched cuBLAS GEMMs through ATen for the rest, with bias and σ (σ') in an element-wise kernel.
// Both compute in float32 for float16/bfloat16 inputs (float64 for float64) and round once on
// output. Current stream, device guard, a launch check after every kernel; no host synchronisation,
// and device memory only from the caching allocator, so both operators can be captured in a CUDA
// graph.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

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
  return t.defined() ? reinterpret_cast<typename KernelType<T>::type*>(t.data_ptr<T>()) : nullptr;
}

void check_on_cuda(const char* op, const at::Tensor& x) {
  TORCH_CHECK(x.is_cuda(), op, ": expected CUDA tensors, got ", x.device());
}

// The fused kernels take shapes whose sides are all at most this long: the paper's layers and
// others like them, whose small products are bound by memory traffic and launches, which fusing
// removes. Longer sides make the per-sample products compute-bound; there cuBLAS's GEMMs are
// expected to beat the kernels' shared-memory products (a model of both at 64×64 → 64×64,
// N = 131072: about 40 ms fused against 31 ms measured for the GEMMs). Unmeasured on a GPU: the
// bound is to be tuned there. It also keeps the kernels' 32-bit shared-memory indices small.
constexpr int64_t kLongestFusedSide = 32;

// The fused kernels' view of a call, or nothing if a side is longer than they take.
std::optional<BilinearShape> fused_shape(const BilinearSizes& s) {
  if (std::max({s.m, s.n, s.p, s.q}) > kLongestFusedSide) return std::nullopt;
  return BilinearShape{s.batch, static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.p),
                       static_cast<int>(s.q)};
}

// Z_i = U X_i Vᵀ as batched GEMMs in the accumulation type, bias and σ in one element-wise kernel,
// then rounded once to x's dtype.
at::Tensor gemm_forward(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v, const at::Tensor& bias,
                        Activation activation, const BilinearSizes& sizes) {
  const auto acc = at::toOpMathType(x.scalar_type());
  const at::Tensor x3 = x.reshape({sizes.batch, sizes.p, sizes.q}).to(acc), u_a = u.to(acc), v_a = v.to(acc);
  const at::Tensor z = (sizes.right_product_first() ? at::matmul(u_a, at::matmul(x3, v_a.t()))
                                                    : at::matmul(at::matmul(u_a, x3), v_a.t()))
                           .contiguous();
  const at::Tensor bias_a = bias.defined() ? bias.to(acc).contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(acc, "matnet::bilinear", [&] {
    C10_CUDA_CHECK(launch_bias_activation_forward(z.data_ptr<scalar_t>(),
                                                  bias_a.defined() ? bias_a.data_ptr<scalar_t>() : nullptr,
                                                  z.numel(), sizes.m * sizes.n, activation,
                                                  c10::cuda::getCurrentCUDAStream()));
  });
  return z.to(x.scalar_type());
}

// Δ_i = G_i ⊙ σ'(Y_i); dX_i = Uᵀ (Δ_i V), dU = Σ_i (Δ_i V) X_iᵀ, dV = Σ_i Δ_iᵀ (U X_i), dB = Σ_i Δ_i, as
// batched GEMMs in the accumulation type, each gradient rounded once to x's dtype.
BilinearGradients gemm_backward(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                const at::Tensor& v, const at::Tensor& y, Activation activation,
                                BilinearOutputMask mask, const BilinearSizes& sizes) {
  const auto [batch, m, n, p, q] = sizes;
  const auto dtype = x.scalar_type(), acc = at::toOpMathType(dtype);
  const at::Tensor g = grad_y.to(acc).contiguous(), y_a = y.to(acc).contiguous();
  const at::Tensor x3 = x.reshape({batch, p, q}).to(acc), u_a = u.to(acc), v_a = v.to(acc);
  const at::Tensor delta = at::empty({batch, m, n}, g.options());
  AT_DISPATCH_FLOATING_TYPES(acc, "matnet::bilinear_backward", [&] {
    C10_CUDA_CHECK(launch_activation_backward(g.data_ptr<scalar_t>(), y_a.data_ptr<scalar_t>(),
                                              delta.data_ptr<scalar_t>(), delta.numel(), activation,
                                              c10::cuda::getCurrentCUDAStream()));
  });
  at::Tensor grad_x, grad_u, grad_v, grad_bias;
  if (mask[0] || mask[1]) {
    const at::Tensor s = at::matmul(delta, v_a);  // S_i = Δ_i V, (batch, m, q)
    if (mask[0]) grad_x = at::matmul(u_a.t(), s).reshape(x.sizes()).to(dtype);
    if (mask[1]) grad_u = at::einsum("imq,ipq->mp", {s, x3}).to(dtype);
  }
  if (mask[2]) {
    // dV = Σ_i Δ_iᵀ W_i with W_i = U X_i: one GEMM contracting over (i, a).
    const at::Tensor w = at::matmul(u_a, x3);
    grad_v = delta.reshape({batch * m, n}).t().mm(w.reshape({batch * m, q})).to(dtype);
  }
  if (mask[3]) grad_bias = delta.sum(0).to(dtype);
  return {grad_x, grad_u, grad_v, grad_bias};
}

at::Tensor bilinear_cuda(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                         const std::optional<at::Tensor>& bias, c10::string_view activation) {
  constexpr const char* op = "matnet::bilinear";
  const Activation parsed = check_bilinear_inputs(op, x, u, v, bias, activation);
  check_on_cuda(op, x);
  const c10::cuda::CUDAGuard device_guard(x.device());
  const BilinearSizes sizes = bilinear_sizes(x, u, v);
  const at::Tensor x_c = x.contiguous(), u_c = u.contiguous(), v_c = v.contiguous();
  const at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
  const std::optional<BilinearShape> shape = fused_shape(sizes);
  at::Tensor y;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using Kernel = typename KernelType<scalar_t>::type;
    FusedPlan plan{};
    if (shape) C10_CUDA_CHECK(plan_fused_forward<Kernel>(*shape, sizes.right_product_first(), parsed, &plan));
    if (!plan.supported) return;
    y = at::empty({sizes.batch, sizes.m, sizes.n}, x.options());
    C10_CUDA_CHECK(launch_fused_forward<Kernel>(plan, kernel_ptr<scalar_t>(x_c), kernel_ptr<scalar_t>(u_c),
                                                kernel_ptr<scalar_t>(v_c), kernel_ptr<scalar_t>(bias_c),
                                                kernel_ptr<scalar_t>(y), parsed, c10::cuda::getCurrentCUDAStream()));
  });
  if (!y.defined()) y = gemm_forward(x_c, u_c, v_c, bias_c, parsed, sizes);
  return y.view_symint(bilinear_output_shape(x, u, v));
}

BilinearGradients bilinear_backward_cuda(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                         const at::Tensor& v, const at::Tensor& y, c10::string_view activation,
                                         const c10::List<bool>& output_mask) {
  constexpr const char* op = "matnet::bilinear_backward";
  const Activation parsed = check_bilinear_backward_inputs(op, grad_y, x, u, v, y, activation);
  const BilinearOutputMask mask = bilinear_output_mask(op, output_mask);
  check_on_cuda(op, x);
  const c10::cuda::CUDAGuard device_guard(x.device());
  const BilinearSizes sizes = bilinear_sizes(x, u, v);
  const at::Tensor g = grad_y.contiguous(), x_c = x.contiguous(), u_c = u.contiguous(), v_c = v.contiguous(),
                   y_c = y.contiguous();
  const std::optional<BilinearShape> shape = fused_shape(sizes);
  bool fused = false;
  at::Tensor grad_x, grad_u, grad_v, grad_bias;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), op, [&] {
    using Kernel = typename KernelType<scalar_t>::type;
    FusedPlan plan{};
    const GradientMask wanted{mask[0], mask[1], mask[2], mask[3]};
    if (shape) C10_CUDA_CHECK(plan_fused_backward<Kernel>(*shape, wanted, parsed, &plan));
    if (!plan.supported) return;
    const auto options = x.options();
    if (mask[0]) grad_x = at::empty(x.sizes(), options);
    if (mask[1]) grad_u = at::empty({sizes.m, sizes.p}, options);
    if (mask[2]) grad_v = at::empty({sizes.n, sizes.q}, options);
    if (mask[3]) grad_bias = at::empty({sizes.m, sizes.n}, options);
    const at::Tensor workspace = at::empty({static_cast<int64_t>(plan.workspace_bytes)}, options.dtype(at::kByte));
    C10_CUDA_CHECK(launch_fused_backward<Kernel>(
        plan, kernel_ptr<scalar_t>(g), kernel_ptr<scalar_t>(x_c), kernel_ptr<scalar_t>(u_c),
        kernel_ptr<scalar_t>(v_c), kernel_ptr<scalar_t>(y_c), kernel_ptr<scalar_t>(grad_x),
        kernel_ptr<scalar_t>(grad_u), kernel_ptr<scalar_t>(grad_v), kernel_ptr<scalar_t>(grad_bias),
        workspace.data_ptr(), parsed, c10::cuda::getCurrentCUDAStream()));
    fused = true;
  });
  if (!fused) return gemm_backward(g, x_c, u_c, v_c, y_c, parsed, mask, sizes);
  return {grad_x, grad_u, grad_v, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CUDA, m) {
  m.impl("bilinear", &bilinear_cuda);
  m.impl("bilinear_backward", &bilinear_backward_cuda);
}

}  // namespace matnet::cuda
