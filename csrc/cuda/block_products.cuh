// Products of the small matrices a thread block holds in shared memory, computed by the whole
// block: each thread owns a tile of the output in registers and walks the common dimension, every
// multiply-add in the accumulation type.
#pragma once

#include <climits>

#include "fused_plan.h"

namespace matnet::cuda {

// A factor of a product in shared memory, seen as lines (the rows of a left factor, the columns of
// a right factor) along the common dimension k: element (line, k) is at
// data[offset(line) + k · k_stride]. The lines may be stacked over the samples of a tile: line l is
// line l mod lines_per_sample of sample l / lines_per_sample, whose matrix starts sample_stride
// elements after the previous sample's.
template <typename Acc>
struct SharedMatrix {
  const Acc* data;
  int lines_per_sample;
  int sample_stride;
  int line_stride;
  int k_stride;

  __device__ int offset(int line) const {
    return (line / lines_per_sample) * sample_stride + (line % lines_per_sample) * line_stride;
  }
};

// One matrix, the same for every sample (U, V).
template <typename Acc>
__device__ SharedMatrix<Acc> single_matrix(const Acc* data, int line_stride, int k_stride) {
  return {data, INT_MAX, 0, line_stride, k_stride};
}

// A matrix per sample, sample_stride apart, its lines_per_sample lines stacked over the samples.
template <typename Acc>
__device__ SharedMatrix<Acc> per_sample_matrices(const Acc* data, int lines_per_sample, int sample_stride,
                                                 int line_stride, int k_stride) {
  return {data, lines_per_sample, sample_stride, line_stride, k_stride};
}

// A thread's tile takes every `step`-th line from `first` (step = the number of tiles along that
// dimension), so neighbouring threads read neighbouring lines. Lines past the end are clamped to
// the last: they are computed but never stored.
template <int kLines, typename Acc>
__device__ void tile_line_offsets(const SharedMatrix<Acc>& matrix, int first, int step, int lines,
                                  int (&offsets)[kLines]) {
#pragma unroll
  for (int t = 0; t < kLines; ++t) {
    const int line = first + t * step;
    offsets[t] = matrix.offset(line < lines ? line : lines - 1);
  }
}

// sum[t][u] += Σ_{k < depth} a[a_lines[t] + k·a_k_stride] · b[b_lines[u] + k·b_k_stride].
template <int TM, int TN, typename Acc>
__device__ void accumulate_tile(Acc (&sum)[TM][TN], const Acc* a, const int (&a_lines)[TM], int a_k_stride,
                                const Acc* b, const int (&b_lines)[TN], int b_k_stride, int depth) {
#pragma unroll 2
  for (int k = 0; k < depth; ++k) {
    Acc a_k[TM], b_k[TN];
#pragma unroll
    for (int t = 0; t < TM; ++t) a_k[t] = a[a_lines[t]];
#pragma unroll
    for (int u = 0; u < TN; ++u) b_k[u] = b[b_lines[u]];
#pragma unroll
    for (int t = 0; t < TM; ++t) {
#pragma unroll
      for (int u = 0; u < TN; ++u) sum[t][u] += a_k[t] * b_k[u];
    }
    a += a_k_stride;
    b += b_k_stride;
  }
}

// C(r, c) = Σ_{k < depth} A(r, k) B(k, c) for r < rows, c < cols; store(r, c, C(r, c)) is called
// once per entry, by the thread that computed it. Ends without a barrier.
template <int TM, int TN, typename Acc, typename Store>
__device__ void tile_product(int rows, int cols, int depth, const SharedMatrix<Acc>& a, const SharedMatrix<Acc>& b,
                             Store&& store) {
  const int row_tiles = ceil_div(rows, TM), col_tiles = ceil_div(cols, TN);
  for (int tile = threadIdx.x; tile < row_tiles * col_tiles; tile += blockDim.x) {
    const int first_row = tile / col_tiles, first_col = tile % col_tiles;
    int a_lines[TM], b_lines[TN];
    tile_line_offsets(a, first_row, row_tiles, rows, a_lines);
    tile_line_offsets(b, first_col, col_tiles, cols, b_lines);
    Acc sum[TM][TN] = {};
    accumulate_tile(sum, a.data, a_lines, a.k_stride, b.data, b_lines, b.k_stride, depth);
#pragma unroll
    for (int t = 0; t < TM; ++t) {
#pragma unroll
      for (int u = 0; u < TN; ++u) {
        const int row = first_row + t * row_tiles, col = first_col + u * col_tiles;
        if (row < rows && col < cols) store(row, col, sum[t][u]);
      }
    }
  }
}

// sums[split][r][c] += Σ_{s < samples, s ≡ split (mod splits)} Σ_{k < depth} A_s(r, k) B_s(k, c), A_s and
// B_s sample s's matrices of a and b (their lines not stacked). The sum over the tile's samples is
// split `splits` ways so that a small output still occupies the block; every entry of `sums` is
// owned by one thread, and sum_splits adds the splits in a fixed order, so the result never
// depends on timing. Ends without a barrier.
template <int TM, int TN, typename Acc>
__device__ void sample_sum_product(int rows, int cols, int depth, int samples, int splits, const SharedMatrix<Acc>& a,
                                   const SharedMatrix<Acc>& b, Acc* sums) {
  const int row_tiles = ceil_div(rows, TM), col_tiles = ceil_div(cols, TN), tiles = row_tiles * col_tiles;
  for (int item = threadIdx.x; item < tiles * splits; item += blockDim.x) {
    const int split = item / tiles, tile = item % tiles;
    const int first_row = tile / col_tiles, first_col = tile % col_tiles;
    int a_lines[TM], b_lines[TN];
    tile_line_offsets(a, first_row, row_tiles, rows, a_lines);
    tile_line_offsets(b, first_col, col_tiles, cols, b_lines);
    Acc sum[TM][TN] = {};
    for (int s = split; s < samples; s += splits) {
      accumulate_tile(sum, a.data + s * a.sample_stride, a_lines, a.k_stride, b.data + s * b.sample_stride, b_lines,
                      b.k_stride, depth);
    }
    Acc* split_sums = sums + split * rows * cols;
#pragma unroll
    for (int t = 0; t < TM; ++t) {
#pragma unroll
      for (int u = 0; u < TN; ++u) {
        const int row = first_row + t * row_tiles, col = first_col + u * col_tiles;
        if (row < rows && col < cols) split_sums[row * cols + col] += sum[t][u];
      }
    }
  }
}

// out[e] = Σ_{split < splits} sums[split · count + e], the splits added in order.
template <typename Acc>
__device__ void sum_splits(const Acc* sums, int splits, int count, Acc* out) {
  for (int e = threadIdx.x; e < count; e += blockDim.x) {
    Acc total = 0;
    for (int split = 0; split < splits; ++split) total += sums[split * count + e];
    out[e] = total;
  }
}

}  // namespace matnet::cuda
