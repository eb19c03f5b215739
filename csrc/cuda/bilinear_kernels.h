// Element-wise CUDA kernels of the bilinear operators, behind launchers that take raw device
// pointers, sizes and a stream. Knows nothing of ATen: compiles with plain nvcc.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../activation.h"

namespace matnet::cuda {

// z[k] = σ(z[k] + bias[k mod (m·n)]) in place over `total` elements of a (batch, m, n) tensor;
// bias may be null. Half and bfloat16 are computed in float.
template <typename T>
cudaError_t launch_bias_activation_forward(T* z, const T* bias, int64_t total, int64_t matrix_size,
                                           Activation activation, cudaStream_t stream);

// delta[k] = grad_y[k] · σ'(y[k]), σ' written through y.
template <typename T>
cudaError_t launch_activation_backward(const T* grad_y, const T* y, T* delta, int64_t total, Activation activation,
                                       cudaStream_t stream);

}  // namespace matnet::cuda
