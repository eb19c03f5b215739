// Rounding float32 to bfloat16 in a vector, for the CPU kernels that store bfloat16 (the lane
// kernels' store_lanes, the AMX unit's store_rounded).
//
// Included inside each per-ISA translation unit's target pragma and namespace (like
// activation_loops.h), so that every instruction set gets its own copy. Not guarded by #pragma once
// on purpose.

// The bits of float32 values (a vector of uint32) rounded to the nearest bfloat16, ties to even, as
// c10::BFloat16 rounds a float, each in the low 16 bits of its word: adding 0x7FFF plus the lowest
// kept bit carries into the kept bits exactly when the dropped half is above a tie, or a tie with an
// odd kept part. A NaN becomes the quiet NaN 0x7FC0, c10::BFloat16's (ATen's vectorised
// float-to-bfloat16 conversion writes 0xFFFF instead).
template <typename Bits32>
inline __attribute__((always_inline)) Bits32 bfloat16_rounded(Bits32 bits) {
  const Bits32 rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);
  const Bits32 nan = reinterpret_cast<Bits32>((bits & 0x7FFFFFFFu) > 0x7F800000u);
  return ((rounded & ~nan) | (0x7FC00000u & nan)) >> 16;
}
