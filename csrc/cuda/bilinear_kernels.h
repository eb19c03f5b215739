// CUDA kernels of the bilinear operators behind launchers that take raw device pointers, sizes and
// a stream, and return the launch status. Knows nothing of ATen: compiles with plain nvcc.
//
// Two paths:
//  - fused (fused_forward.cu, fused_backward.cu): one kernel per direction, reading and writing
//    each sample once, for shapes whose working set fits in a block's shared memory (the glue in
//    bilinear_cuda.cpp sends it the small matrices only);
//  - batched GEMM (bilinear_cuda.cpp, through ATen) for the rest, with the element-wise kernels
//    below applying bias and σ, or σ'.
// T is float, double, __half or __nv_bfloat16 for the fused kernels; the element-wise kernels work
// in the accumulation type (float or double).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../activation.h"
#include "fused_plan.h"

namespace matnet::cuda {

// Decides whether the fused forward takes this shape on the current device, and how (tile size,
// blocks, shared memory). plan->supported is false where it does not: use the GEMM path.
template <typename T>
cudaError_t plan_fused_forward(const BilinearShape& shape, bool right_product_first, Activation activation,
                               FusedPlan* plan);

// y (batch, m, n) = σ(U X_i Vᵀ + B); every pointer contiguous; bias may be null.
template <typename T>
cudaError_t launch_fused_forward(const FusedPlan& plan, const T* x, const T* u, const T* v, const T* bias, T* y,
                                 Activation activation, cudaStream_t stream);

// As plan_fused_forward, for the gradients the mask asks for; plan->workspace_bytes is the scratch
// launch_fused_backward needs (the blocks' partial sums of dU, dV and dB).
template <typename T>
cudaError_t plan_fused_backward(const BilinearShape& shape, GradientMask mask, Activation activation,
                                FusedPlan* plan);

// grad_x, grad_u, grad_v, grad_bias from grad_y and the saved x and y; pointers of gradients the
// plan's mask does not ask for are ignored (may be null). workspace: plan.workspace_bytes, device.
template <typename T>
cudaError_t launch_fused_backward(const FusedPlan& plan, const T* grad_y, const T* x, const T* u, const T* v,
                                  const T* y, T* grad_x, T* grad_u, T* grad_v, T* grad_bias, void* workspace,
                                  Activation activation, cudaStream_t stream);

// z[k] = σ(z[k] + bias[k mod (m·n)]) in place over `total` elements of a (batch, m, n) tensor;
// bias may be null.
template <typename T>
cudaError_t launch_bias_activation_forward(T* z, const T* bias, int64_t total, int64_t matrix_size,
                                           Activation activation, cudaStream_t stream);

// delta[k] = grad_y[k] · σ'(y[k]), σ' written through y.
template <typename T>
cudaError_t launch_activation_backward(const T* grad_y, const T* y, T* delta, int64_t total, Activation activation,
                                       cudaStream_t stream);

}  // namespace matnet::cuda
