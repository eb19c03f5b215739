// The lane kernels compiled for AVX-512 (F, with FMA): 32 registers of 16 floats / 8 doubles.
#include "bilinear_lanes.h"

#ifdef MATNET_HAVE_X86_LANE_KERNELS
#include <immintrin.h>

#include "../parallel.h"

#include <vector>

// Everything defined from here on (and nothing the headers above defined) is compiled for AVX-512.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif

#define MATNET_CPU_CAPABILITY avx512
namespace matnet::cpu::avx512 {
struct Isa {
  static constexpr int kVectorBytes = 64;
  // 4 × 4 = 16 accumulators, 4 vector loads and a broadcast in flight: well inside 32 registers
  // (the other tiles tried: docs/cpu_kernels.md, "The lane kernels").
  static constexpr int kScalarTimesLanesTile[2] = {4, 4};
  static constexpr int kLanesTimesLanesTile[2] = {4, 4};
  // Cache lines of the next block fetched per register tile (Prefetcher in lane_kernels.h): twice
  // AVX2's, as a block holds twice the samples (measured: docs/cpu_kernels.md, "Where the time goes").
  static constexpr int kPrefetchLinesPerTile = 8;
  // 16 float16 ↔ float32 lanes (AVX-512F's conversions, rounding to nearest even): float16 samples.
  static __m512 widen_half(const void* src) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(src)));
  }
  template <typename Lanes>
  static void narrow_half(Lanes lanes, void* dst) {
    _mm256_storeu_si256(static_cast<__m256i*>(dst),
                        _mm512_cvtps_ph((__m512)lanes, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};
}  // namespace matnet::cpu::avx512
#include "bilinear_lanes_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // MATNET_HAVE_X86_LANE_KERNELS
