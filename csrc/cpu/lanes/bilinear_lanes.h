// The lane kernels' interface: one table of entry points per instruction set (compiled in
// bilinear_lanes_<isa>.cpp under that ISA's target), plus the scratch they need, so that the ATen
// side can decide whether a problem fits before calling one. No vector types appear here: this
// header is portable, the vector code lives only in the per-ISA translation units.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdint>

#include "../bilinear_problem.h"

namespace matnet::cpu {

// Samples are summed (dU, dV, dB) in at most kSumSlots slots, each a fixed, contiguous run of at
// least kMinBlocksPerSlot blocks (where the batch has them) summed in order and then added slot by
// slot: the result is the same bits for any thread count. The minimum keeps small batches from
// paying a slot's fixed cost (zeroing its lane sums, adding up their lanes) for every block.
constexpr int64_t kSumSlots = 16;
constexpr int64_t kMinBlocksPerSlot = 4;

// Entry points for float32 and float64, and for bfloat16 and float16 samples computed in float32
// (bilinear_problem.h).
struct LaneKernels {
  int64_t vector_bytes;  // one register: a block holds vector_bytes / sizeof(T) samples
  void (*forward_float)(const ForwardProblem<float>&);
  void (*forward_double)(const ForwardProblem<double>&);
  void (*forward_bfloat16)(const ForwardProblem<float, c10::BFloat16>&);
  void (*forward_half)(const ForwardProblem<float, c10::Half>&);
  void (*backward_float)(const BackwardProblem<float>&);
  void (*backward_double)(const BackwardProblem<double>&);
  void (*backward_bfloat16)(const BackwardProblem<float, c10::BFloat16>&);
  void (*backward_half)(const BackwardProblem<float, c10::Half>&);

  void forward(const ForwardProblem<float>& problem) const { forward_float(problem); }
  void forward(const ForwardProblem<double>& problem) const { forward_double(problem); }
  void forward(const ForwardProblem<float, c10::BFloat16>& problem) const { forward_bfloat16(problem); }
  void forward(const ForwardProblem<float, c10::Half>& problem) const { forward_half(problem); }
  void backward(const BackwardProblem<float>& problem) const { backward_float(problem); }
  void backward(const BackwardProblem<double>& problem) const { backward_double(problem); }
  void backward(const BackwardProblem<float, c10::BFloat16>& problem) const { backward_bfloat16(problem); }
  void backward(const BackwardProblem<float, c10::Half>& problem) const { backward_half(problem); }
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MATNET_HAVE_X86_LANE_KERNELS 1
namespace avx512 {
extern const LaneKernels lane_kernels;
}
namespace avx2 {
extern const LaneKernels lane_kernels;
}
#endif

#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__))
#define MATNET_HAVE_NEON_LANE_KERNELS 1
namespace neon {
extern const LaneKernels lane_kernels;
}
#endif

// Whether the lane kernels check that their hand carving of scratch fits the sizes below: set by
// the environment variable MATNET_CHECK_SCRATCH=1 when the library is first used (the test suite
// sets it); off otherwise.
bool scratch_checks_enabled();

// Lane vectors of one block's scratch, per thread. Forward: Z (m·n), one input's X (p·q) and its
// intermediate X Vᵀ (p·n) or U X (m·q). Backward: Δ and Y (m·n each), then per input X and dX
// (p·q each), P = Δ V (m·q), R = Uᵀ Δ (p·n).
template <typename Problem>
int64_t forward_scratch_vectors(const Problem& problem) {
  int64_t per_input = 0;
  for (const auto& in : problem.inputs)
    per_input = std::max(per_input, in.p * in.q + std::max(in.p * problem.n, problem.m * in.q));
  return problem.m * problem.n + per_input;
}

template <typename Problem>
int64_t backward_scratch_vectors(const Problem& problem) {
  int64_t per_input = 0;
  for (const auto& in : problem.inputs)
    per_input = std::max(per_input, 2 * in.p * in.q + problem.m * in.q + in.p * problem.n);
  return 2 * problem.m * problem.n + per_input;
}

// Entries of the sums over samples: dU_j (m·p_j) and dV_j (n·q_j) for every input, then dB (m·n).
template <typename Problem>
int64_t sum_entries(const Problem& problem) {
  int64_t total = problem.m * problem.n;
  for (const auto& in : problem.inputs) total += problem.m * in.p + problem.n * in.q;
  return total;
}

}  // namespace matnet::cpu
