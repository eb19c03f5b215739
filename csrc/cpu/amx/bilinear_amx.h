// The bfloat16 forward and backward on Intel AMX tiles (docs/design.md §7.5), used by the CPU
// variant `amx`.
//
// AMX multiplies bfloat16 tiles into float32 accumulators: a product of two bfloat16 numbers is
// exact in float32, and the sums are float32. Every matrix product of the layer has one operand
// that is a bfloat16 input or weight; where the other is a float32 intermediate (T = X Vᵀ forward;
// Δ = G ⊙ σ'(Z), Δ V and Uᵀ Δ backward), that operand is split exactly into three bfloat16 matrices,
// M = M_hi + M_mid + M_lo (8 significant bits each: 24 in all), and the product is three exact tile
// products summed in float32. So the arithmetic is float32's and each output is rounded once, as in
// the lane kernels; the sums run in another order, so the results equal theirs within float32
// rounding, not bit for bit. Subnormal bfloat16 operands count as zero on AMX, an absolute error
// below 2⁻¹²⁶ per term.
//
// The problems are the lane kernels' 16-bit ones (bilinear_problem.h): weights and bias as float32,
// which here must be widened bfloat16 (as bilinear_paths.cpp passes them), so that they convert
// back to bfloat16 exactly. Portable header: the tile code lives only in bilinear_amx.cpp.
#pragma once

#include <c10/util/BFloat16.h>

#include "../bilinear_problem.h"

// The tile intrinsics (GCC ≥ 11, clang ≥ 12) and the OS's grant of the tile registers (Linux's
// arch_prctl) are what this path needs besides the CPU.
#if defined(__x86_64__) && defined(__linux__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define MATNET_HAVE_AMX_KERNELS 1
#endif

namespace matnet::cpu::amx {

using ForwardProblem16 = ForwardProblem<float, c10::BFloat16>;
using BackwardProblem16 = BackwardProblem<float, c10::BFloat16>;

// Whether this path can take a problem: its per-thread scratch is small enough, and every weight is
// finite (a split part that is 0 times an infinite weight would be NaN where the float32 product is
// ±inf; an inf or NaN in X is handled sample by sample).
bool can_take(const ForwardProblem16& problem);
bool can_take(const BackwardProblem16& problem);

// Whether the tiles beat the lane kernels on a problem. Splitting an entry costs about as much as
// the lane kernels' multiply-adds of a few dozen entries, while the tile products cost next to
// nothing; so the tiles pay off where each split entry feeds enough multiply-adds (thresholds
// measured: docs/cpu_kernels.md, "bfloat16 on AMX"). Always true under MATNET_AMX_EVERYWHERE=1.
bool pays_off(const ForwardProblem16& problem);
bool pays_off(const BackwardProblem16& problem);

// Y_i = σ(Σ_j U_j X_i^j V_jᵀ + B), and its backward (docs/design.md §2), with dU, dV and dB summed
// in fixed slots of samples as the lane kernels sum them (lanes/bilinear_lanes.h): the same bits for
// any thread count. Only where the CPU has AMX-BF16 and the OS granted this process the tile
// registers (capability.h).
void run(const ForwardProblem16& problem);
void run(const BackwardProblem16& problem);

}  // namespace matnet::cpu::amx
