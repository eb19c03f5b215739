// How the fused bilinear kernels lay out shared memory and how many samples a thread block takes
// per tile. Plain C++ shared by the launchers (host) and the kernels (device).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../activation.h"

namespace matnet::cuda {

constexpr int kThreads = 256;           // threads per block of the fused kernels
constexpr int kResidentBlocks = 2;      // blocks per multiprocessor their registers must allow
constexpr int kMaxSamplesPerTile = 32;  // beyond this the per-tile overheads are already amortised

struct DeviceLimits {
  int multiprocessors;
  std::size_t shared_bytes_per_block;           // dynamic shared memory one block may opt in to
  std::size_t shared_bytes_per_multiprocessor;  // shared by the blocks resident on one multiprocessor
};

// x (batch, p, q), u (m, p), v (n, q), y (batch, m, n).
struct BilinearShape {
  int64_t batch;
  int m, n, p, q;

  bool empty() const { return batch == 0 || m == 0 || n == 0 || p == 0 || q == 0; }
};

struct GradientMask {
  bool x, u, v, bias;
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
// U, Vᵀ, the tile's X_i, and the intermediate products (T_i = X_i Vᵀ, or W_i = U X_i).
struct ForwardLayout {
  int u, v_transposed, x, intermediate, total;
};

MATNET_HOST_DEVICE inline ForwardLayout forward_layout(const BilinearShape& s, int samples, bool right_product_first) {
  ForwardLayout layout;
  layout.u = 0;
  layout.v_transposed = layout.u + s.m * s.p;
  layout.x = layout.v_transposed + s.n * s.q;
  layout.intermediate = layout.x + samples * s.p * s.q;
  layout.total = layout.intermediate + samples * (right_product_first ? s.p * s.n : s.m * s.q);
  return layout;
}

// Shared memory of the backward kernel: U, V, the tile's X_i and Δ_i, the intermediate products
// (S_i = Δ_i V, later W_i = U X_i), and the block's running sums of dU (per split), dV (per split)
// and dB. Parts the mask does not need have size 0.
struct BackwardLayout {
  int u, v, x, delta, intermediate, sum_u, sum_v, sum_bias, total;
};

MATNET_HOST_DEVICE inline BackwardLayout backward_layout(const BilinearShape& s, GradientMask mask, int samples) {
  const bool x_needed = mask.u || mask.v, intermediate_needed = mask.x || mask.u || mask.v;
  BackwardLayout layout;
  layout.u = 0;
  layout.v = layout.u + s.m * s.p;
  layout.x = layout.v + s.n * s.q;
  layout.delta = layout.x + (x_needed ? samples * s.p * s.q : 0);
  layout.intermediate = layout.delta + samples * s.m * s.n;
  layout.sum_u = layout.intermediate + (intermediate_needed ? samples * s.m * s.q : 0);
  layout.sum_v = layout.sum_u + (mask.u ? sample_splits(s.m, s.p, samples) * s.m * s.p : 0);
  layout.sum_bias = layout.sum_v + (mask.v ? sample_splits(s.n, s.q, samples) * s.n * s.q : 0);
  layout.total = layout.sum_bias + (mask.bias ? s.m * s.n : 0);
  return layout;
}

// Per-block partial sums the backward kernel leaves in global memory: dU, dV, dB of each block.
MATNET_HOST_DEVICE inline int partial_sums_per_block(const BilinearShape& s) { return s.m * s.p + s.n * s.q + s.m * s.n; }

// What a launcher decided for one call.
struct FusedPlan {
  bool supported;  // false: the shapes do not fit in shared memory (or are empty): use the GEMM path
  BilinearShape shape;
  GradientMask mask;         // backward only
  bool right_product_first;  // forward only
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
