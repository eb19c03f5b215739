// How the fused kernels of the operator family lay out shared memory and how many samples a thread
// block takes per tile. Plain C++ shared by the launchers (host) and the kernels (device).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../activation.h"

namespace matnet::cuda {

constexpr int kThreads = 256;           // threads per block of the fused kernels
constexpr int kResidentBlocks = 2;      // blocks per multiprocessor their registers must allow
constexpr int kMaxSamplesPerTile = 32;  // beyond this the per-tile overheads are already amortised
constexpr int kMaxFusedInputs = 8;      // inputs D of one fused call (the paper's encoder has 5)

struct DeviceLimits {
  int multiprocessors;
  std::size_t shared_bytes_per_block;           // dynamic shared memory one block may opt in to
  std::size_t shared_bytes_per_multiprocessor;  // shared by the blocks resident on one multiprocessor
};

// Input j: x_j (batch, p[j], q[j]), u_j (m, p[j]), v_j (n, q[j]); y (batch, m, n) = σ(Σ_j U_j X_j V_jᵀ + B).
struct FusedShape {
  int64_t batch;
  int m, n, inputs;
  int p[kMaxFusedInputs], q[kMaxFusedInputs];
  bool right_product_first[kMaxFusedInputs];  // forward: U_j (X_j V_jᵀ), else (U_j X_j) V_jᵀ

  MATNET_HOST_DEVICE bool empty() const {
    bool empty = batch == 0 || m == 0 || n == 0;
    for (int j = 0; j < inputs; ++j) empty = empty || p[j] == 0 || q[j] == 0;
    return empty;
  }
};

// The gradients a backward call asks for: dX_j, dU_j, dV_j per input, and dB.
struct GradientMask {
  bool x[kMaxFusedInputs], u[kMaxFusedInputs], v[kMaxFusedInputs];
  bool bias;
};

// Thread tile of a product: kLongTile lines along a dimension stacked over the samples of a tile
// (long), kShortTile along a single matrix's dimension. Halved for float64, which needs twice the
// registers.
template <typename Acc>
constexpr int kLongTile = sizeof(Acc) == 8 ? 4 : 8;
constexpr int kShortTile = 4;

MATNET_HOST_DEVICE inline int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Thread tiles of a rows × cols product with tile_rows × tile_cols tiles.
MATNET_HOST_DEVICE inline int tile_count(int rows, int cols, int tile_rows, int tile_cols) {
  return ceil_div(rows, tile_rows) * ceil_div(cols, tile_cols);
}

// The sums over a tile's samples (dU, dV) are split this many ways so that a small output (few
// thread tiles) still keeps the whole block busy.
MATNET_HOST_DEVICE inline int sample_splits(int rows, int cols, int samples) {
  const int ways = kThreads / tile_count(rows, cols, kShortTile, kShortTile);
  return ways < 1 ? 1 : (ways > samples ? samples : ways);
}

// Shared memory of the forward kernel for tiles of `samples`, offsets in accumulation-type elements:
// every U_j and V_jᵀ (staged once), one input's X_j for the tile's samples and its intermediate
// product (T = X_j V_jᵀ or W = U_j X_j; both reused input after input), and for D > 1 the running
// sum Z of the inputs' products.
struct ForwardLayout {
  int u[kMaxFusedInputs], v_transposed[kMaxFusedInputs];
  int x, intermediate, z, total;
};

MATNET_HOST_DEVICE inline ForwardLayout forward_layout(const FusedShape& s, int samples) {
  ForwardLayout layout;
  int at = 0, x_size = 0, intermediate_size = 0;
  for (int j = 0; j < s.inputs; ++j) {
    layout.u[j] = at;
    layout.v_transposed[j] = at + s.m * s.p[j];
    at = layout.v_transposed[j] + s.n * s.q[j];
    const int x_j = s.p[j] * s.q[j], intermediate_j = s.right_product_first[j] ? s.p[j] * s.n : s.m * s.q[j];
    x_size = x_j > x_size ? x_j : x_size;
    intermediate_size = intermediate_j > intermediate_size ? intermediate_j : intermediate_size;
  }
  layout.x = at;
  layout.intermediate = layout.x + samples * x_size;
  layout.z = layout.intermediate + samples * intermediate_size;
  layout.total = layout.z + (s.inputs > 1 ? samples * s.m * s.n : 0);
  return layout;
}

// Shared memory of the backward kernel: every U_j and V_j, one input's X_j for the tile's samples,
// the tile's Δ_i, the intermediate products (S = Δ V_j, later W = U_j X_j), and the block's running
// sums of dU_j (per split), dV_j (per split) for every input and of dB. Parts the mask does not
// need have size 0.
struct BackwardLayout {
  int u[kMaxFusedInputs], v[kMaxFusedInputs], sum_u[kMaxFusedInputs], sum_v[kMaxFusedInputs];
  int x, delta, intermediate, sum_bias, total;
};

MATNET_HOST_DEVICE inline BackwardLayout backward_layout(const FusedShape& s, const GradientMask& mask, int samples) {
  BackwardLayout layout;
  int at = 0, x_size = 0, intermediate_size = 0;
  for (int j = 0; j < s.inputs; ++j) {
    layout.u[j] = at;
    layout.v[j] = at + s.m * s.p[j];
    at = layout.v[j] + s.n * s.q[j];
    if (mask.u[j] || mask.v[j]) x_size = s.p[j] * s.q[j] > x_size ? s.p[j] * s.q[j] : x_size;
    if (mask.x[j] || mask.u[j] || mask.v[j]) intermediate_size = s.m * s.q[j] > intermediate_size ? s.m * s.q[j] : intermediate_size;
  }
  layout.x = at;
  layout.delta = layout.x + samples * x_size;
  layout.intermediate = layout.delta + samples * s.m * s.n;
  at = layout.intermediate + samples * intermediate_size;
  for (int j = 0; j < s.inputs; ++j) {
    layout.sum_u[j] = at;
    at += mask.u[j] ? sample_splits(s.m, s.p[j], samples) * s.m * s.p[j] : 0;
    layout.sum_v[j] = at;
    at += mask.v[j] ? sample_splits(s.n, s.q[j], samples) * s.n * s.q[j] : 0;
  }
  layout.sum_bias = at;
  layout.total = at + (mask.bias ? s.m * s.n : 0);
  return layout;
}

// The per-block partial sums the backward kernel leaves in global memory, in this order:
// dU_0 … dU_{D−1} (m·p_j each), dV_0 … dV_{D−1} (n·q_j each), dB (m·n).
struct PartialSumsLayout {
  int u[kMaxFusedInputs], v[kMaxFusedInputs];
  int bias, per_block;
};

MATNET_HOST_DEVICE inline PartialSumsLayout partial_sums_layout(const FusedShape& s) {
  PartialSumsLayout layout;
  int at = 0;
  for (int j = 0; j < s.inputs; ++j) {
    layout.u[j] = at;
    at += s.m * s.p[j];
  }
  for (int j = 0; j < s.inputs; ++j) {
    layout.v[j] = at;
    at += s.n * s.q[j];
  }
  layout.bias = at;
  layout.per_block = at + s.m * s.n;
  return layout;
}

// What a launcher decided for one call.
struct FusedPlan {
  bool supported;  // false: the shapes do not fit in shared memory (or are empty): use the GEMM path
  FusedShape shape;
  GradientMask mask;  // backward only
  int samples_per_tile;
  int blocks;  // persistent blocks, each walking tiles blockIdx.x, blockIdx.x + blocks, …
  std::size_t shared_bytes;
  std::size_t workspace_bytes;  // backward: the per-block partial sums
};

// Modelled thread time of a product: the rounds of thread tiles the block needs, times the
// multiply-adds of one tile (padding of partial tiles included).
inline double product_time(int rows, int cols, int depth, int tile_rows, int tile_cols, int sample_rounds = 1) {
  const int rounds = ceil_div(tile_count(rows, cols, tile_rows, tile_cols), kThreads);
  return static_cast<double>(rounds) * depth * tile_rows * tile_cols * sample_rounds;
}

// Fixed cost of a tile (barriers, loop set-up, staging latency), in the units of product_time.
constexpr double kTileOverhead = 4096;

// Shared memory a block may use: enough for two resident blocks per multiprocessor (the CUDA
// runtime reserves 1 KiB per block), so one block's loads overlap the other's arithmetic; all a
// block may have if a single sample needs more.
inline std::size_t shared_budget(const DeviceLimits& limits, std::size_t one_sample_bytes) {
  const std::size_t two_blocks = limits.shared_bytes_per_multiprocessor / 2 - 1024;
  if (one_sample_bytes > two_blocks) return limits.shared_bytes_per_block;
  return two_blocks < limits.shared_bytes_per_block ? two_blocks : limits.shared_bytes_per_block;
}

// The samples per tile with the least modelled time for the whole batch among those whose shared
// memory fits `budget` (the larger on ties); 0 if even one sample does not fit. The batch runs in
// waves of `parallel_tiles` tiles at once, so large batches favour the least time per sample and
// small ones (fewer tiles than the device holds) smaller tiles spread over more multiprocessors.
template <typename BytesOf, typename TimeOf>
int best_samples_per_tile(BytesOf bytes_of, TimeOf time_of, std::size_t budget, int64_t batch, int64_t parallel_tiles) {
  int best = 0;
  double best_time = 0;
  for (int samples = 1; samples <= kMaxSamplesPerTile && bytes_of(samples) <= budget; ++samples) {
    const int64_t tiles = (batch + samples - 1) / samples, waves = (tiles + parallel_tiles - 1) / parallel_tiles;
    const double batch_time = static_cast<double>(waves) * (time_of(samples) + kTileOverhead);
    if (best == 0 || batch_time <= best_time) {
      best = samples;
      best_time = batch_time;
    }
  }
  return best;
}

}  // namespace matnet::cuda
