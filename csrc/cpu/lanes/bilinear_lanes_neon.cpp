// The lane kernels compiled for aarch64's Advanced SIMD (NEON, part of every ARMv8-A CPU, so no
// target pragma and no detection): 32 registers of 4 floats / 2 doubles. Its speed is unmeasured:
// the project has run it only under emulation (tools/test_aarch64_emulated.sh), which checks the
// results, not the time.
#include "bilinear_lanes.h"

#ifdef MATNET_HAVE_NEON_LANE_KERNELS
#include <arm_neon.h>

#include <vector>

#include "../parallel.h"

#define MATNET_CPU_CAPABILITY neon
namespace matnet::cpu::neon {
struct Isa {
  static constexpr int kVectorBytes = 16;
  // 4 × 4 = 16 accumulators, 4 vector loads and a broadcast in flight: inside 32 registers, as
  // for AVX-512 (not tuned: no ARM hardware to time it on).
  static constexpr int kScalarTimesLanesTile[2] = {4, 4};
  static constexpr int kLanesTimesLanesTile[2] = {4, 4};
  // Cache lines of the next block fetched per register tile (Prefetcher in lane_kernels.h): half
  // AVX2's, as a block holds half its samples (not tuned either).
  static constexpr int kPrefetchLinesPerTile = 2;
  // 4 float16 ↔ float32 lanes (ARMv8-A's conversions, rounding to nearest even, the default mode):
  // float16 samples.
  static float32x4_t widen_half(const void* src) { return vcvt_f32_f16(vld1_f16(static_cast<const float16_t*>(src))); }
  template <typename Lanes>
  static void narrow_half(Lanes lanes, void* dst) {
    vst1_f16(static_cast<float16_t*>(dst), vcvt_f16_f32(reinterpret_cast<float32x4_t>(lanes)));
  }
};
}  // namespace matnet::cpu::neon
#include "bilinear_lanes_impl.h"
#endif  // MATNET_HAVE_NEON_LANE_KERNELS
