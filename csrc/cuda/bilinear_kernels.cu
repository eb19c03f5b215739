#include "bilinear_kernels.h"

#include <algorithm>

namespace matnet::cuda {
namespace {

// Arithmetic type: float for the 16-bit types, the type itself otherwise.
__device__ inline float to_compute(__half v) { return __half2float(v); }
__device__ inline float to_compute(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ inline float to_compute(float v) { return v; }
__device__ inline double to_compute(double v) { return v; }

template <typename T> __device__ inline T from_compute(float v);
template <> __device__ inline __half from_compute<__half>(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 from_compute<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ inline float from_compute<float>(float v) { return v; }
template <typename T> __device__ inline T from_compute(double v) { return static_cast<T>(v); }

constexpr int kThreads = 256;

// Grid-stride loops with 64-bit indices: any size, a bounded grid.
dim3 grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return dim3(static_cast<unsigned>(std::min<int64_t>(blocks, 65535)));
}

template <Activation A, typename T>
__global__ void bias_activation_forward_kernel(T* z, const T* bias, int64_t total, int64_t matrix_size) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    auto value = to_compute(z[k]);
    if (bias != nullptr) value += to_compute(bias[k % matrix_size]);
    z[k] = from_compute<T>(activate<A>(value));
  }
}

template <Activation A, typename T>
__global__ void activation_backward_kernel(const T* grad_y, const T* y, T* delta, int64_t total) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < total;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    delta[k] = from_compute<T>(activation_backward<A>(to_compute(grad_y[k]), to_compute(y[k])));
  }
}

}  // namespace

template <typename T>
cudaError_t launch_bias_activation_forward(T* z, const T* bias, int64_t total, int64_t matrix_size,
                                           Activation activation, cudaStream_t stream) {
  if (total == 0) return cudaSuccess;
  dispatch_activation(activation, [&](auto a) {
    bias_activation_forward_kernel<decltype(a)::value><<<grid_for(total), kThreads, 0, stream>>>(
        z, bias, total, matrix_size);
  });
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_activation_backward(const T* grad_y, const T* y, T* delta, int64_t total, Activation activation,
                                       cudaStream_t stream) {
  if (total == 0) return cudaSuccess;
  dispatch_activation(activation, [&](auto a) {
    activation_backward_kernel<decltype(a)::value><<<grid_for(total), kThreads, 0, stream>>>(grad_y, y, delta, total);
  });
  return cudaGetLastError();
}

#define MATNET_INSTANTIATE(T)                                                                              \
  template cudaError_t launch_bias_activation_forward<T>(T*, const T*, int64_t, int64_t, Activation,      \
                                                         cudaStream_t);                                   \
  template cudaError_t launch_activation_backward<T>(const T*, const T*, T*, int64_t, Activation, cudaStream_t);
MATNET_INSTANTIATE(float)
MATNET_INSTANTIATE(double)
MATNET_INSTANTIATE(__half)
MATNET_INSTANTIATE(__nv_bfloat16)
#undef MATNET_INSTANTIATE

}  // namespace matnet::cuda
