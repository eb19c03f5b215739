// CUDA kernels of the operator family (operator_family.h; docs/design.md §7.3). Two paths:
//  - fused (fused_forward.cu, fused_backward.cu): one kernel per direction over all D ≤
//    kMaxFusedInputs inputs, for matrices with sides up to kLongestFusedSide (the layers of the
//    paper) whose working set fits in a thread block's shared memory;
//  - batched cuBLAS GEMMs through ATen for the rest, with bias and σ (σ') in an element-wise kernel.
// Both compute in float32 for float16/bfloat16 inputs (float64 for float64) and round each output
// once: Z = Σ_j U_j X^j V_jᵀ + B and Δ are never rounded to 16 bits. Current stream, device guard,
// a launch check after every kernel; no host synchronisation, and device memory only from the
// caching allocator, so every operator can be captured in a CUDA graph.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../bilinear_checks.h"
#include "../family_kernels.h"
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
// expected to beat the kernels' shared-memory products (docs/design.md §7.3; to be tuned on a GPU).
// It also keeps the kernels' 32-bit shared-memory indices small.
constexpr int64_t kLongestFusedSide = 32;

// The inputs as contiguous tensors, x_j viewed as (N, p_j, q_j).
struct Inputs {
  std::vector<at::Tensor> x, u, v;
  int64_t batch, m, n;
};

Inputs contiguous_inputs(at::TensorList xs, at::TensorList us, at::TensorList vs) {
  Inputs in{{}, {}, {}, batch_size(xs), us[0].size(0), vs[0].size(0)};
  for (size_t j = 0; j < xs.size(); ++j) {
    in.x.push_back(xs[j].contiguous().view({in.batch, xs[j].size(-2), xs[j].size(-1)}));
    in.u.push_back(us[j].contiguous());
    in.v.push_back(vs[j].contiguous());
  }
  return in;
}

// The fused kernels' view of a call, or nothing where they do not take it (too many inputs, a side
// longer than kLongestFusedSide).
std::optional<FusedShape> fused_shape(const Inputs& in) {
  const int64_t inputs = static_cast<int64_t>(in.x.size());
  if (inputs > kMaxFusedInputs || std::max(in.m, in.n) > kLongestFusedSide) return std::nullopt;
  FusedShape shape{in.batch, static_cast<int>(in.m), static_cast<int>(in.n), static_cast<int>(inputs), {}, {}, {}};
  for (int64_t j = 0; j < inputs; ++j) {
    const int64_t p = in.x[j].size(1), q = in.x[j].size(2);
    if (std::max(p, q) > kLongestFusedSide) return std::nullopt;
    shape.p[j] = static_cast<int>(p);
    shape.q[j] = static_cast<int>(q);
    shape.right_product_first[j] = right_product_first(in.m, in.n, p, q);
  }
  return shape;
}

template <typename T>
FusedOperands<typename KernelType<T>::type> operands_of(const Inputs& in, const at::Tensor& bias) {
  FusedOperands<typename KernelType<T>::type> operands{};
  for (size_t j = 0; j < in.x.size(); ++j) {
    operands.x[j] = kernel_ptr<T>(in.x[j]);
    operands.u[j] = kernel_ptr<T>(in.u[j]);
    operands.v[j] = kernel_ptr<T>(in.v[j]);
  }
  operands.bias = kernel_ptr<T>(bias);
  return operands;
}

// Z_i = Σ_j U_j X_i^j V_jᵀ as batched GEMMs in the accumulation type (each product in its cheaper
// order), bias and σ in one element-wise kernel, then rounded once to the inputs' dtype.
at::Tensor gemm_forward(const Inputs& in, const at::Tensor& bias, Activation activation) {
  const auto dtype = in.x[0].scalar_type(), acc = at::toOpMathType(dtype);
  at::Tensor z = at::zeros({in.batch, in.m, in.n}, in.x[0].options().dtype(acc));
  for (size_t j = 0; j < in.x.size(); ++j) {
    const at::Tensor x = in.x[j].to(acc), u = in.u[j].to(acc), v = in.v[j].to(acc);
    z.add_(right_product_first(in.m, in.n, x.size(1), x.size(2)) ? at::matmul(u, at::matmul(x, v.t()))
                                                                  : at::matmul(at::matmul(u, x), v.t()));
  }
  const at::Tensor bias_a = bias.defined() ? bias.to(acc).contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(acc, "matnet forward", [&] {
    C10_CUDA_CHECK(launch_bias_activation_forward(z.data_ptr<scalar_t>(),
                                                  bias_a.defined() ? bias_a.data_ptr<scalar_t>() : nullptr, z.numel(),
                                                  in.m * in.n, activation, c10::cuda::getCurrentCUDAStream()));
  });
  return z.to(dtype);
}

// Δ_i = G_i ⊙ σ'(Y_i); per input dX_i = U_jᵀ (Δ_i V_j), dU_j = Σ_i (Δ_i V_j) X_iᵀ, dV_j = Σ_i Δ_iᵀ (U_j X_i),
// and dB = Σ_i Δ_i, as batched GEMMs in the accumulation type, each gradient rounded once.
std::vector<at::Tensor> gemm_backward(const at::Tensor& grad_y, const Inputs& in, const at::Tensor& y,
                                      Activation activation, const c10::List<bool>& mask) {
  const size_t inputs = in.x.size();
  const int64_t batch = in.batch, m = in.m, n = in.n;
  const auto dtype = y.scalar_type(), acc = at::toOpMathType(dtype);
  const at::Tensor g = grad_y.to(acc).contiguous(), y_a = y.to(acc).contiguous();
  const at::Tensor delta = at::empty({batch, m, n}, g.options());
  AT_DISPATCH_FLOATING_TYPES(acc, "matnet backward", [&] {
    C10_CUDA_CHECK(launch_activation_backward(g.data_ptr<scalar_t>(), y_a.data_ptr<scalar_t>(),
                                              delta.data_ptr<scalar_t>(), delta.numel(), activation,
                                              c10::cuda::getCurrentCUDAStream()));
  });
  std::vector<at::Tensor> grads(3 * inputs + 1);
  for (size_t j = 0; j < inputs; ++j) {
    const at::Tensor x = in.x[j].to(acc), u = in.u[j].to(acc), v = in.v[j].to(acc);
    const int64_t q = x.size(2);
    if (mask[j] || mask[inputs + j]) {
      const at::Tensor s = at::matmul(delta, v);  // S_i = Δ_i V_j, (batch, m, q)
      if (mask[j]) grads[j] = at::matmul(u.t(), s).to(dtype);
      if (mask[inputs + j]) grads[inputs + j] = at::einsum("imq,ipq->mp", {s, x}).to(dtype);
    }
    if (mask[2 * inputs + j]) {
      // dV_j = Σ_i Δ_iᵀ W_i with W_i = U_j X_i: one GEMM contracting over (i, a).
      const at::Tensor w = at::matmul(u, x);
      grads[2 * inputs + j] = delta.reshape({batch * m, n}).t().mm(w.reshape({batch * m, q})).to(dtype);
    }
  }
  if (mask[3 * inputs]) grads[3 * inputs] = delta.sum(0).to(dtype);
  return grads;
}

at::Tensor forward_cuda(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                        const std::optional<at::Tensor>& bias, c10::string_view activation) {
  const Activation parsed = check_forward_arguments(op, xs, us, vs, bias, activation);
  check_on_cuda(op.forward, xs[0]);
  const c10::cuda::CUDAGuard device_guard(xs[0].device());
  const Inputs in = contiguous_inputs(xs, us, vs);
  const at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
  const std::optional<FusedShape> shape = fused_shape(in);
  at::Tensor y;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xs[0].scalar_type(), "matnet forward", [&] {
    using Kernel = typename KernelType<scalar_t>::type;
    FusedPlan plan{};
    if (shape) C10_CUDA_CHECK(plan_fused_forward<Kernel>(*shape, parsed, &plan));
    if (!plan.supported) return;
    y = at::empty({in.batch, in.m, in.n}, xs[0].options());
    C10_CUDA_CHECK(launch_fused_forward<Kernel>(plan, operands_of<scalar_t>(in, bias_c), kernel_ptr<scalar_t>(y),
                                                parsed, c10::cuda::getCurrentCUDAStream()));
  });
  if (!y.defined()) y = gemm_forward(in, bias_c, parsed);
  return y.view_symint(output_shape(xs, us, vs));
}

std::vector<at::Tensor> backward_cuda(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                      at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                      c10::string_view activation, const c10::List<bool>& mask) {
  const Activation parsed = check_backward_arguments(op, grad_y, xs, us, vs, y, activation, mask);
  check_on_cuda(op.backward, xs[0]);
  const c10::cuda::CUDAGuard device_guard(xs[0].device());
  const size_t inputs = xs.size();
  const Inputs in = contiguous_inputs(xs, us, vs);
  const at::Tensor g = grad_y.contiguous().view({in.batch, in.m, in.n}), y_c = y.contiguous().view({in.batch, in.m, in.n});
  const std::optional<FusedShape> shape = fused_shape(in);
  std::vector<at::Tensor> grads;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xs[0].scalar_type(), "matnet backward", [&] {
    using Kernel = typename KernelType<scalar_t>::type;
    GradientMask wanted{};
    for (size_t j = 0; j < inputs && j < kMaxFusedInputs; ++j) {
      wanted.x[j] = mask[j];
      wanted.u[j] = mask[inputs + j];
      wanted.v[j] = mask[2 * inputs + j];
    }
    wanted.bias = mask[3 * inputs];
    FusedPlan plan{};
    if (shape) C10_CUDA_CHECK(plan_fused_backward<Kernel>(*shape, wanted, parsed, &plan));
    if (!plan.supported) return;
    grads.resize(3 * inputs + 1);
    FusedGradients<Kernel> out{};
    for (size_t j = 0; j < inputs; ++j) {
      if (mask[j]) grads[j] = at::empty(in.x[j].sizes(), xs[j].options());
      if (mask[inputs + j]) grads[inputs + j] = at::empty(us[j].sizes(), us[j].options());
      if (mask[2 * inputs + j]) grads[2 * inputs + j] = at::empty(vs[j].sizes(), vs[j].options());
      out.x[j] = kernel_ptr<scalar_t>(grads[j]);
      out.u[j] = kernel_ptr<scalar_t>(grads[inputs + j]);
      out.v[j] = kernel_ptr<scalar_t>(grads[2 * inputs + j]);
    }
    if (mask[3 * inputs]) grads[3 * inputs] = at::empty({in.m, in.n}, y.options());
    out.bias = kernel_ptr<scalar_t>(grads[3 * inputs]);
    const at::Tensor workspace =
        at::empty({static_cast<int64_t>(plan.workspace_bytes)}, xs[0].options().dtype(at::kByte));
    C10_CUDA_CHECK(launch_fused_backward<Kernel>(plan, kernel_ptr<scalar_t>(g), operands_of<scalar_t>(in, at::Tensor()),
                                                 kernel_ptr<scalar_t>(y_c), out, workspace.data_ptr(), parsed,
                                                 c10::cuda::getCurrentCUDAStream()));
  });
  if (grads.empty()) grads = gemm_backward(g, in, y_c, parsed, mask);
  for (size_t j = 0; j < inputs; ++j)
    if (grads[j].defined()) grads[j] = grads[j].view(xs[j].sizes());  // xs[j]'s shape
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CUDA, m) { register_family<&forward_cuda, &backward_cuda>(m); }

}  // namespace matnet::cuda
