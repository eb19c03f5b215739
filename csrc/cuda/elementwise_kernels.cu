// Element-wise kernels of the batched-GEMM path (bilinear_cuda.cpp), which computes in the
// accumulation type: bias and σ after the forward's products, σ' before the backward's.
#include <algorithm>

#include "bilinear_kernels.h"
#include "kernel_launch.cuh"

namespace matnet::cuda {
namespace {

constexpr int kElementwiseThreads = 256;

// Grid-stride loops with 64-bit indices: any size, a bounded grid.
unsigned blocks_for(int64_t total) {
  return static_cast<unsigned>(std::min<int64_t>((total + kElementwiseThreads - 1) / kElementwiseThreads, 65535));
}

template <Activation A, typename T>
__global__ void bias_activation_forward_kernel(T* z, const T* bias, int64_t total, int64_t matrix_size) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    T value = z[k];
    if (bias != nullptr) value += bias[k % matrix_size];
    z[k] = activate<A>(value);
  }
}

template <Activation A, typename T>
__global__ void activation_backward_kernel(const T* grad_y, const T* y, T* delta, int64_t total) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    delta[k] = activation_backward<A>(grad_y[k], y[k]);
  }
}

}  // namespace

template <typename T>
cudaError_t launch_bias_activation_forward(T* z, const T* bias, int64_t total, int64_t matrix_size,
                                           Activation activation, cudaStream_t stream) {
  if (total == 0) return cudaSuccess;
  cudaError_t status = cudaSuccess;
  dispatch_activation(activation, [&](auto a) {
    status = launch_kernel(bias_activation_forward_kernel<decltype(a)::value, T>, blocks_for(total),
                           kElementwiseThreads, 0, stream, z, bias, total, matrix_size);
  });
  return status;
}

template <typename T>
cudaError_t launch_activation_backward(const T* grad_y, const T* y, T* delta, int64_t total, Activation activation,
                                       cudaStream_t stream) {
  if (total == 0) return cudaSuccess;
  cudaError_t status = cudaSuccess;
  dispatch_activation(activation, [&](auto a) {
    status = launch_kernel(activation_backward_kernel<decltype(a)::value, T>, blocks_for(total), kElementwiseThreads,
                           0, stream, grad_y, y, delta, total);
  });
  return status;
}

#define MATNET_INSTANTIATE(T)                                                                              \
  template cudaError_t launch_bias_activation_forward<T>(T*, const T*, int64_t, int64_t, Activation,      \
                                                         cudaStream_t);                                   \
  template cudaError_t launch_activation_backward<T>(const T*, const T*, T*, int64_t, Activation, cudaStream_t);
MATNET_INSTANTIATE(float)
MATNET_INSTANTIATE(double)
#undef MATNET_INSTANTIATE

}  // namespace matnet::cuda
