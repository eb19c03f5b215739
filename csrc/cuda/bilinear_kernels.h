// CUDA kernels of the operator family behind launchers that take raw device pointers, sizes and a
// stream, and return the launch status. Knows nothing of ATen: compiles with plain nvcc.
//
// Two paths (docs/design.md §7.3):
//  - fused (fused_forward.cu, fused_backward.cu): one kernel per direction over all D inputs,
//    reading and writing each sample once, for shapes whose working set fits in a block's shared
//    memory (the glue in bilinear_cuda.cpp sends it the small matrices only);
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

// The device pointers of the D inputs of one call, each contiguous; bias (m, n) may be null.
template <typename T>
struct FusedOperands {
  const T* x[kMaxFusedInputs];
  const T* u[kMaxFusedInputs];
  const T* v[kMaxFusedInputs];
  const T* bias;
};

// Where the backward writes: dX_j, dU_j, dV_j, dB, contiguous; null where the mask does not ask.
template <typename T>
struct FusedGradients {
  T* x[kMaxFusedInputs];
  T* u[kMaxFusedInputs];
  T* v[kMaxFusedInputs];
  T* bias;
};

// Decides whether the fused forward takes this shape on the current device, and how (tile size,
// blocks, shared memory). plan->supported is false where it does not: use the GEMM path.
template <typename T>
cudaError_t plan_fused_forward(const FusedShape& shape, Activation activation, FusedPlan* plan);

// y (batch, m, n) = σ(Σ_j U_j X_j Vᵀ_j + B), rounded once.
template <typename T>
cudaError_t launch_fused_forward(const FusedPlan& plan, const FusedOperands<T>& operands, T* y, Activation activation,
                                 cudaStream_t stream);

// As plan_fused_forward, for the gradients the mask asks for; plan->workspace_bytes is the scratch
// launch_fused_backward needs (the blocks' partial sums of dU_j, dV_j and dB).
template <typename T>
cudaError_t plan_fused_backward(const FusedShape& shape, const GradientMask& mask, Activation activation,
                                FusedPlan* plan);

// The gradients of the plan's mask from grad_y and the saved inputs and y (operands.bias unused).
// workspace: plan.workspace_bytes of device memory.
template <typename T>
cudaError_t launch_fused_backward(const FusedPlan& plan, const T* grad_y, const FusedOperands<T>& operands, const T* y,
                                  const FusedGradients<T>& grads, void* workspace, Activation activation,
                                  cudaStream_t stream);

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
