// The lane kernels compiled for AVX2 with FMA (and F16C, which every AVX2 CPU has, for float16
// samples): 16 registers of 8 floats / 4 doubles.
#include "bilinear_lanes.h"

#ifdef MATNET_HAVE_X86_LANE_KERNELS
#include <immintrin.h>

#include "../parallel.h"

#include <vector>

// Everything defined from here on (and nothing the headers above defined) is compiled for AVX2.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#define MATNET_CPU_CAPABILITY avx2
namespace matnet::cpu::avx2 {
struct Isa {
  static constexpr int kVectorBytes = 32;
  // 4 × 3 = 12 accumulators, 3 vector loads and a broadcast in flight: exactly 16 registers, so
  // nothing spills (a 4 × 4 tile would need 21).
  static constexpr int kScalarTimesLanesTile[2] = {4, 3};
  static constexpr int kLanesTimesLanesTile[2] = {4, 3};
  // Cache lines of the next block fetched per register tile (Prefetcher in lane_kernels.h).
  // Measured best of 2, 3, 4, 6, 8 and 16 (see there).
  static constexpr int kPrefetchLinesPerTile = 4;
  // 8 float16 ↔ float32 lanes (F16C's conversions, rounding to nearest even): float16 samples.
  static __m256 widen_half(const void* src) { return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(src))); }
  template <typename Lanes>
  static void narrow_half(Lanes lanes, void* dst) {
    _mm_storeu_si128(static_cast<__m128i*>(dst),
                     _mm256_cvtps_ph((__m256)lanes, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};
}  // namespace matnet::cpu::avx2
#include "bilinear_lanes_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // MATNET_HAVE_X86_LANE_KERNELS
