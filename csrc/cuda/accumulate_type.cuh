// The arithmetic type of the kernels and the conversions to and from it: float32 for float32,
// float16 and bfloat16 (a 16-bit value is widened when read and rounded once when written), float64
// for float64.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

namespace matnet::cuda {

template <typename T>
using AccumulateType = std::conditional_t<std::is_same_v<T, double>, double, float>;

__host__ __device__ inline float widen(__half v) { return __half2float(v); }
__host__ __device__ inline float widen(__nv_bfloat16 v) { return __bfloat162float(v); }
__host__ __device__ inline float widen(float v) { return v; }
__host__ __device__ inline double widen(double v) { return v; }

// Rounds to nearest (even) once.
template <typename T>
__host__ __device__ inline T narrow(AccumulateType<T> v) {
  if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(v);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else {
    return v;
  }
}

}  // namespace matnet::cuda
