// The lane kernels compiled for AVX2 with FMA: 16 registers of 8 floats / 4 doubles.
#include "bilinear_lanes.h"

#ifdef MATNET_HAVE_X86_LANE_KERNELS
#include "../parallel.h"

#include <vector>

// Everything defined from here on (and nothing the headers above defined) is compiled for AVX2.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
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
};
}  // namespace matnet::cpu::avx2
#include "bilinear_lanes_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // MATNET_HAVE_X86_LANE_KERNELS
