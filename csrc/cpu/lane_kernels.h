// Micro-kernels on "lane tensors": a block of L samples is stored side by side, element (r, c) of
// all L matrices X_1 … X_L in one 64-byte vector. Every product of the bilinear layer then becomes
// a scalar-matrix × lane-matrix product (or a lane-wise product summed over samples), whose vector
// instructions are fully used for any m, n, p, q — where a GEMM per sample, or one over the
// flattened batch, wastes lanes on 20- or 28-wide rows and has an inner dimension too short for
// BLAS to reach its speed.
//
// Everything here is always_inline so that it is compiled for the instruction set of the
// target_clones function that calls it (bilinear_blocks.cpp).
#pragma once

#include <algorithm>
#include <cstdint>

#define MATNET_ALWAYS_INLINE inline __attribute__((always_inline))

namespace matnet::cpu {

// 64 bytes: one AVX-512 register, two AVX2 registers, four SSE registers. Aligned like the scalar,
// not to 64 bytes, so any buffer will do (loads and stores are then the unaligned forms, as fast
// as the aligned ones on current CPUs when the data happens to be aligned).
typedef float FloatLanes __attribute__((vector_size(64), aligned(alignof(float))));
typedef double DoubleLanes __attribute__((vector_size(64), aligned(alignof(double))));
template <typename T> struct LanesOf;
template <> struct LanesOf<float> { using type = FloatLanes; };
template <> struct LanesOf<double> { using type = DoubleLanes; };
template <typename T> using Lanes = typename LanesOf<T>::type;
template <typename T> constexpr int64_t kLanes = 64 / sizeof(T);

// Index vectors for __builtin_shuffle, one integer per lane.
typedef int32_t FloatLaneIndex __attribute__((vector_size(64)));
typedef int64_t DoubleLaneIndex __attribute__((vector_size(64)));
template <typename T> struct LaneIndexOf;
template <> struct LaneIndexOf<float> { using type = FloatLaneIndex; };
template <> struct LaneIndexOf<double> { using type = DoubleLaneIndex; };

// One stage of an L × L transpose held in L registers: between rows i and i + H (i & H == 0),
// the off-diagonal H-wide blocks swap places. Stages H = L/2, L/4, …, 1 transpose the tile.
template <typename T, int H>
MATNET_ALWAYS_INLINE void transpose_stage(Lanes<T>* rows) {
  constexpr int L = kLanes<T>;
  typename LaneIndexOf<T>::type keep, take;  // indices into (rows[i], rows[i + H]) as one 2L vector
#pragma GCC unroll 16
  for (int c = 0; c < L; ++c) {
    keep[c] = (c & H) ? L + c - H : c;
    take[c] = (c & H) ? L + c : c + H;
  }
#pragma GCC unroll 16
  for (int i = 0; i < L; ++i) {
    if (i & H) continue;
    const Lanes<T> upper = __builtin_shuffle(rows[i], rows[i + H], keep);
    const Lanes<T> lower = __builtin_shuffle(rows[i], rows[i + H], take);
    rows[i] = upper;
    rows[i + H] = lower;
  }
}

template <typename T>
MATNET_ALWAYS_INLINE void transpose_tile(Lanes<T>* rows) {
  if constexpr (kLanes<T> >= 16) transpose_stage<T, 8>(rows);
  transpose_stage<T, 4>(rows);
  transpose_stage<T, 2>(rows);
  transpose_stage<T, 1>(rows);
}

// dst[k][lane] = src[lane·size + k] for the `count` ≤ L samples of a block, L × L tiles at a time
// through registers; the lanes past `count` are zero, so they add nothing to sums over samples.
template <typename T>
MATNET_ALWAYS_INLINE void samples_to_lanes(const T* src, int64_t count, int64_t size, Lanes<T>* dst) {
  constexpr int64_t L = kLanes<T>;
  int64_t k0 = 0;
  for (; k0 + L <= size; k0 += L) {
    Lanes<T> rows[L];
    if (count == L) {  // full blocks, all but the last: no per-lane test
#pragma GCC unroll 16
      for (int64_t lane = 0; lane < L; ++lane) rows[lane] = *reinterpret_cast<const Lanes<T>*>(src + lane * size + k0);
    } else {
      for (int64_t lane = 0; lane < L; ++lane)
        rows[lane] = lane < count ? *reinterpret_cast<const Lanes<T>*>(src + lane * size + k0) : Lanes<T>{};
    }
    transpose_tile<T>(rows);
#pragma GCC unroll 16
    for (int64_t k = 0; k < L; ++k) dst[k0 + k] = rows[k];
  }
  for (int64_t k = k0; k < size; ++k) {
    Lanes<T> column{};
    for (int64_t lane = 0; lane < count; ++lane) column[lane] = src[lane * size + k];
    dst[k] = column;
  }
}

// dst[lane·size + k] = src[k][lane]: back to one matrix per sample, for the `count` real lanes.
template <typename T>
MATNET_ALWAYS_INLINE void lanes_to_samples(const Lanes<T>* src, int64_t count, int64_t size, T* dst) {
  constexpr int64_t L = kLanes<T>;
  int64_t k0 = 0;
  for (; k0 + L <= size; k0 += L) {
    Lanes<T> rows[L];
#pragma GCC unroll 16
    for (int64_t k = 0; k < L; ++k) rows[k] = src[k0 + k];
    transpose_tile<T>(rows);
    for (int64_t lane = 0; lane < count; ++lane) *reinterpret_cast<Lanes<T>*>(dst + lane * size + k0) = rows[lane];
  }
  for (int64_t k = k0; k < size; ++k)
    for (int64_t lane = 0; lane < count; ++lane) dst[lane * size + k] = src[k][lane];
}

// Strides of a matrix operand, in elements: entry (row, col) is at row·row_stride + col·col_stride.
struct Strides {
  int64_t row, col;
};

// out(x, y) = Σ_l S(x, l) · A(l, y): S a scalar matrix (rows × inner), A and out lane matrices.
// Register tile of XB × YB output vectors: per l, YB vector loads and XB broadcasts feed XB·YB FMAs.
struct ScalarTimesLanes {
  static constexpr bool kFirstIndexedByOutputRow = true;  // S(x, l)
  // 4 × 4 = 16 accumulators: 4 vector loads and 4 broadcasts per 16 FMAs. Measured against 8×2,
  // 6×2, 3×4 and 4×3 tiles at MNIST shapes: as fast as 4×3, faster than the others.
  static constexpr int kTileRows = 4, kTileCols = 4;
  template <int XB, int YB, typename T>
  static MATNET_ALWAYS_INLINE void tile(const T* s, Strides s_strides, const Lanes<T>* a, Strides a_strides,
                                        Lanes<T>* out, Strides out_strides, int64_t inner) {
    Lanes<T> acc[XB][YB];
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb)
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) acc[xb][yb] = Lanes<T>{};
    // Pointers walk along l (one increment each) instead of recomputing l·stride: the strides are
    // runtime values, and that addressing would crowd the integer registers out of the loop.
    const T* scalar_at[XB];
    const Lanes<T>* column_at[YB];
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb) scalar_at[xb] = s + xb * s_strides.row;
#pragma GCC unroll 8
    for (int yb = 0; yb < YB; ++yb) column_at[yb] = a + yb * a_strides.col;
    for (int64_t l = 0; l < inner; ++l) {
      Lanes<T> column[YB];
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) {
        column[yb] = *column_at[yb];
        column_at[yb] += a_strides.row;
      }
#pragma GCC unroll 8
      for (int xb = 0; xb < XB; ++xb) {
        const T scalar = *scalar_at[xb];
        scalar_at[xb] += s_strides.col;
#pragma GCC unroll 8
        for (int yb = 0; yb < YB; ++yb) acc[xb][yb] += scalar * column[yb];
      }
    }
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb)
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) out[xb * out_strides.row + yb * out_strides.col] = acc[xb][yb];
  }

};

// out(x, y) += Σ_l A(l, x) ⊙ B(l, y): lane-wise products of two lane matrices, accumulated into a
// lane matrix whose lanes are summed at the very end (the Σ over samples of dU and dV).
struct LanesTimesLanes {
  static constexpr bool kFirstIndexedByOutputRow = false;  // A(l, x)
  // Both operands are lane vectors: a square tile loads the fewest per FMA.
  static constexpr int kTileRows = 4, kTileCols = 4;
  template <int XB, int YB, typename T>
  static MATNET_ALWAYS_INLINE void tile(const Lanes<T>* a, Strides a_strides, const Lanes<T>* b, Strides b_strides,
                                        Lanes<T>* out, Strides out_strides, int64_t inner) {
    Lanes<T> acc[XB][YB];
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb)
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) acc[xb][yb] = out[xb * out_strides.row + yb * out_strides.col];
    const Lanes<T>* a_at[XB];
    const Lanes<T>* b_at[YB];
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb) a_at[xb] = a + xb * a_strides.col;
#pragma GCC unroll 8
    for (int yb = 0; yb < YB; ++yb) b_at[yb] = b + yb * b_strides.col;
    for (int64_t l = 0; l < inner; ++l) {
      Lanes<T> row_a[XB], row_b[YB];
#pragma GCC unroll 8
      for (int xb = 0; xb < XB; ++xb) {
        row_a[xb] = *a_at[xb];
        a_at[xb] += a_strides.row;
      }
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) {
        row_b[yb] = *b_at[yb];
        b_at[yb] += b_strides.row;
      }
#pragma GCC unroll 8
      for (int xb = 0; xb < XB; ++xb)
#pragma GCC unroll 8
        for (int yb = 0; yb < YB; ++yb) acc[xb][yb] += row_a[xb] * row_b[yb];
    }
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb)
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) out[xb * out_strides.row + yb * out_strides.col] = acc[xb][yb];
  }

};

// Runs the XB × YB tile for a height × width edge (height ≤ XB, width ≤ YB), counting down from
// the kernel's full tile at compile time.
template <typename Kernel, int XB, int YB, typename T, typename First>
MATNET_ALWAYS_INLINE void edge_tile(int64_t height, int64_t width, const First* first, Strides first_strides,
                                    const Lanes<T>* second, Strides second_strides, Lanes<T>* out,
                                    Strides out_strides, int64_t inner) {
  if constexpr (XB > 1) {
    if (height < XB)
      return edge_tile<Kernel, XB - 1, YB, T>(height, width, first, first_strides, second, second_strides, out,
                                              out_strides, inner);
  }
  if constexpr (YB > 1) {
    if (width < YB)
      return edge_tile<Kernel, XB, YB - 1, T>(height, width, first, first_strides, second, second_strides, out,
                                              out_strides, inner);
  }
  Kernel::template tile<XB, YB, T>(first, first_strides, second, second_strides, out, out_strides, inner);
}

// out(x, y) for x < rows, y < cols through Kernel, contracting over `inner`; `second` is the
// lane matrix (l, y), `first` the scalar matrix S(x, l) or the lane matrix A(l, x).
template <typename Kernel, typename T, typename First>
MATNET_ALWAYS_INLINE void tiled_product(int64_t rows, int64_t cols, int64_t inner, const First* first,
                                        Strides first_strides, const Lanes<T>* second, Strides second_strides,
                                        Lanes<T>* out, Strides out_strides) {
  constexpr int XB = Kernel::kTileRows, YB = Kernel::kTileCols;
  const int64_t first_x_stride = Kernel::kFirstIndexedByOutputRow ? first_strides.row : first_strides.col;
  // Columns outside: the slice of `second` a column tile reads (YB lane vectors per l) stays in L1
  // while every row tile uses it; `first` is the smaller operand or, for S, tiny.
  for (int64_t y = 0; y < cols; y += YB) {
    for (int64_t x = 0; x < rows; x += XB) {
      const First* f = first + x * first_x_stride;
      const Lanes<T>* sec = second + y * second_strides.col;
      Lanes<T>* o = out + x * out_strides.row + y * out_strides.col;
      if (x + XB <= rows && y + YB <= cols) {
        Kernel::template tile<XB, YB, T>(f, first_strides, sec, second_strides, o, out_strides, inner);
      } else {
        edge_tile<Kernel, XB, YB, T>(std::min<int64_t>(rows - x, XB), std::min<int64_t>(cols - y, YB), f,
                                     first_strides, sec, second_strides, o, out_strides, inner);
      }
    }
  }
}

// out = S · A: out(x, y) = Σ_l S(x, l) A(l, y).
template <typename T>
MATNET_ALWAYS_INLINE void scalar_times_lanes(int64_t rows, int64_t cols, int64_t inner, const T* s, Strides s_strides,
                                             const Lanes<T>* a, Strides a_strides, Lanes<T>* out, Strides out_strides) {
  tiled_product<ScalarTimesLanes, T>(rows, cols, inner, s, s_strides, a, a_strides, out, out_strides);
}

// out += Aᵀ ⊙· B: out(x, y) += Σ_l A(l, x) ⊙ B(l, y), lane by lane.
template <typename T>
MATNET_ALWAYS_INLINE void accumulate_lanes_times_lanes(int64_t rows, int64_t cols, int64_t inner, const Lanes<T>* a,
                                                       Strides a_strides, const Lanes<T>* b, Strides b_strides,
                                                       Lanes<T>* out, Strides out_strides) {
  tiled_product<LanesTimesLanes, T>(rows, cols, inner, a, a_strides, b, b_strides, out, out_strides);
}

}  // namespace matnet::cpu
