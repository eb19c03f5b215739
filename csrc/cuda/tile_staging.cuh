// Global → shared memory copies of a tile by the whole thread block, widening to the
// accumulation type on the way.
#pragma once

#include <cstdint>
#include <cstring>

#include "accumulate_type.cuh"

namespace matnet::cuda {

// 16-byte loads issued per thread before any of them is used, so that enough bytes are in flight
// to keep the memory system busy while the block stages a tile.
constexpr int kLoadsInFlight = 4;

inline bool aligned_for_vector_loads(const void* pointer, std::size_t bytes_per_sample) {
  return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0 && bytes_per_sample % 16 == 0;
}

// dst[e] = op({sources[0][e], …, sources[kSources − 1][e]}) for e < count. With `aligned` (every
// source 16-byte aligned), the sources are read in 16-byte vectors.
template <int kSources, typename T, typename Acc, typename Op>
__device__ void transform_to_shared(const T* const (&sources)[kSources], int count, bool aligned, Op&& op, Acc* dst) {
  constexpr int kPerVector = 16 / sizeof(T);
  int first_scalar = 0;
  if (aligned) {
    const int vectors = count / kPerVector;
    for (int base = threadIdx.x; base < vectors; base += kLoadsInFlight * blockDim.x) {
      uint4 loaded[kLoadsInFlight][kSources];
#pragma unroll
      for (int b = 0; b < kLoadsInFlight; ++b) {
        const int vector = base + b * blockDim.x;
#pragma unroll
        for (int s = 0; s < kSources; ++s) {
          if (vector < vectors) loaded[b][s] = reinterpret_cast<const uint4*>(sources[s])[vector];
        }
      }
#pragma unroll
      for (int b = 0; b < kLoadsInFlight; ++b) {
        const int vector = base + b * blockDim.x;
        if (vector >= vectors) break;
#pragma unroll
        for (int t = 0; t < kPerVector; ++t) {
          T values[kSources];
#pragma unroll
          for (int s = 0; s < kSources; ++s) {
            std::memcpy(&values[s], reinterpret_cast<const char*>(&loaded[b][s]) + t * sizeof(T), sizeof(T));
          }
          dst[vector * kPerVector + t] = op(values);
        }
      }
    }
    first_scalar = vectors * kPerVector;
  }
  for (int e = first_scalar + threadIdx.x; e < count; e += blockDim.x) {
    T values[kSources];
#pragma unroll
    for (int s = 0; s < kSources; ++s) values[s] = sources[s][e];
    dst[e] = op(values);
  }
}

// dst[e] = src[e], widened.
template <typename T, typename Acc>
__device__ void stage(const T* src, int count, bool aligned, Acc* dst) {
  const T* const sources[1] = {src};
  transform_to_shared(sources, count, aligned, [](const T (&values)[1]) { return widen(values[0]); }, dst);
}

// dst[c · rows + r] = src[r · cols + c]: a rows × cols matrix stored transposed, widened.
template <typename T, typename Acc>
__device__ void stage_transposed(const T* src, int rows, int cols, Acc* dst) {
  for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) dst[(e % cols) * rows + e / cols] = widen(src[e]);
}

}  // namespace matnet::cuda
