// Micro-kernels on "lane tensors": a block of L samples is stored side by side, element (r, c) of
// all L matrices X_1 … X_L in one vector register. Every product of the bilinear layer then becomes
// a scalar-matrix × lane-matrix product (or a lane-wise product summed over samples), whose vector
// instructions are fully used for any m, n, p, q — where a GEMM per sample, or one over the
// flattened batch, wastes lanes on 20- or 28-wide rows and has an inner dimension too short for
// BLAS to reach its speed.
//
// Written once for every instruction set: the including translation unit (bilinear_lanes_<isa>.cpp)
// defines MATNET_CPU_CAPABILITY, the namespace everything here lives in, and in it a struct `Isa`
// with the register width and the register-tile shapes of that instruction set; the file is
// compiled under that unit's target pragma. One namespace per instruction set keeps the variants
// apart at link time (no inline function compiled for AVX-512 can stand in for the AVX2 one).
//
// Not guarded by #pragma once on purpose: it belongs to exactly one translation unit per ISA.

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#define MATNET_ALWAYS_INLINE inline __attribute__((always_inline))

namespace matnet::cpu::MATNET_CPU_CAPABILITY {

#include "../bfloat16_rounding.h"

// One register of lanes. Aligned like the scalar, not the register, so any buffer will do (the
// unaligned loads and stores are as fast as the aligned ones when the data happens to be aligned).
// Through a struct, so that Lanes<T> is a non-deduced context and T comes from the scalar operands.
template <typename T>
struct LanesOf {
  using type __attribute__((vector_size(Isa::kVectorBytes), aligned(alignof(T)))) = T;
};
template <typename T>
using Lanes = typename LanesOf<T>::type;
template <typename T>
constexpr int64_t kLanes = Isa::kVectorBytes / sizeof(T);

// One stage of an L × L transpose held in L registers: between rows i and i + H (i & H == 0),
// the off-diagonal H-wide blocks swap places. Stages H = L/2, L/4, …, 1 transpose the tile. Each
// stage is one two-register shuffle per output row, which every target does in registers now that
// a lane vector is exactly one register. Lane c of the upper row takes entry keep(c) of
// (rows[i], rows[i + H]) as one 2L vector, lane c of the lower row entry take(c).
template <int L, int H>
constexpr int keep_index(int c) {
  return (c & H) ? L + c - H : c;
}
template <int L, int H>
constexpr int take_index(int c) {
  return (c & H) ? L + c : c + H;
}

#if defined(__clang__) || __GNUC__ >= 12
// __builtin_shufflevector (clang, GCC ≥ 12): the indices are constants, one argument per lane.
template <typename T, int H, int... C>
MATNET_ALWAYS_INLINE void transpose_stage(Lanes<T>* rows, std::integer_sequence<int, C...>) {
  constexpr int L = kLanes<T>;
#pragma GCC unroll 16
  for (int i = 0; i < L; ++i) {
    if (i & H) continue;
    const Lanes<T> upper = __builtin_shufflevector(rows[i], rows[i + H], keep_index<L, H>(C)...);
    const Lanes<T> lower = __builtin_shufflevector(rows[i], rows[i + H], take_index<L, H>(C)...);
    rows[i] = upper;
    rows[i + H] = lower;
  }
}
#else
// __builtin_shuffle (GCC < 12): the indices as a vector of integers of the scalar's width.
template <typename T> struct LaneIndexOf;
template <> struct LaneIndexOf<float> { using type __attribute__((vector_size(Isa::kVectorBytes))) = int32_t; };
template <> struct LaneIndexOf<double> { using type __attribute__((vector_size(Isa::kVectorBytes))) = int64_t; };

template <typename T, int H, int... C>
MATNET_ALWAYS_INLINE void transpose_stage(Lanes<T>* rows, std::integer_sequence<int, C...>) {
  constexpr int L = kLanes<T>;
  const typename LaneIndexOf<T>::type keep{keep_index<L, H>(C)...}, take{take_index<L, H>(C)...};
#pragma GCC unroll 16
  for (int i = 0; i < L; ++i) {
    if (i & H) continue;
    const Lanes<T> upper = __builtin_shuffle(rows[i], rows[i + H], keep);
    const Lanes<T> lower = __builtin_shuffle(rows[i], rows[i + H], take);
    rows[i] = upper;
    rows[i + H] = lower;
  }
}
#endif

template <typename T, int H>
MATNET_ALWAYS_INLINE void transpose_stage(Lanes<T>* rows) {
  transpose_stage<T, H>(rows, std::make_integer_sequence<int, kLanes<T>>{});
}

template <typename T>
MATNET_ALWAYS_INLINE void transpose_tile(Lanes<T>* rows) {
  if constexpr (kLanes<T> >= 16) transpose_stage<T, 8>(rows);
  if constexpr (kLanes<T> >= 8) transpose_stage<T, 4>(rows);
  if constexpr (kLanes<T> >= 4) transpose_stage<T, 2>(rows);
  transpose_stage<T, 1>(rows);
}

// L scalars of storage type S from `src` (bilinear_problem.h) as one lane vector of T: loaded as
// they are where S is T; bfloat16 is float32's upper 16 bits, so widening is a shift of the bits;
// float16 through the instruction set's own conversion (Isa::widen_half).
template <typename T, typename S>
MATNET_ALWAYS_INLINE Lanes<T> load_lanes(const S* src) {
  if constexpr (std::is_same_v<S, T>) {
    return *reinterpret_cast<const Lanes<T>*>(src);
  } else if constexpr (std::is_same_v<S, c10::BFloat16>) {
    using Bits16 __attribute__((vector_size(Isa::kVectorBytes / 2), aligned(2))) = uint16_t;
    using Bits32 __attribute__((vector_size(Isa::kVectorBytes))) = uint32_t;
    return reinterpret_cast<Lanes<T>>(__builtin_convertvector(*reinterpret_cast<const Bits16*>(src), Bits32) << 16);
  } else {
    static_assert(std::is_same_v<S, c10::Half> && std::is_same_v<T, float>);
    return reinterpret_cast<Lanes<T>>(Isa::widen_half(src));
  }
}

// The inverse: `lanes` stored as L scalars of type S at `dst`, each rounded once to the nearest
// (ties to even), as c10::BFloat16 and c10::Half round a float; a NaN stays a NaN (bfloat16: 0x7FC0,
// c10::BFloat16's; ATen's vectorised float-to-bfloat16 conversion writes 0xFFFF instead).
template <typename T, typename S>
MATNET_ALWAYS_INLINE void store_lanes(Lanes<T> lanes, S* dst) {
  if constexpr (std::is_same_v<S, T>) {
    *reinterpret_cast<Lanes<T>*>(dst) = lanes;
  } else if constexpr (std::is_same_v<S, c10::BFloat16>) {
    using Bits16 __attribute__((vector_size(Isa::kVectorBytes / 2), aligned(2))) = uint16_t;
    using Bits32 __attribute__((vector_size(Isa::kVectorBytes))) = uint32_t;
    *reinterpret_cast<Bits16*>(dst) = __builtin_convertvector(bfloat16_rounded(reinterpret_cast<Bits32>(lanes)), Bits16);
  } else {
    static_assert(std::is_same_v<S, c10::Half> && std::is_same_v<T, float>);
    Isa::narrow_half(lanes, dst);
  }
}

// dst[k][lane] = src[lane·sample_stride + k], k < size, for the `count` ≤ L samples of a block, L × L
// tiles at a time through registers; the lanes past `count` are zero, so they add nothing to sums
// over samples. sample_stride is `size` for consecutive samples, 0 for one matrix shared by all.
// Samples stored as S are widened to T as they are loaded (load_lanes).
template <typename T, typename S>
void samples_to_lanes(const S* src, int64_t sample_stride, int64_t count, int64_t size, Lanes<T>* dst) {
  constexpr int64_t L = kLanes<T>;
  int64_t k0 = 0;
  for (; k0 + L <= size; k0 += L) {
    Lanes<T> rows[L];
    if (count == L) {  // full blocks, all but the last: no per-lane test
#pragma GCC unroll 16
      for (int64_t lane = 0; lane < L; ++lane)
        rows[lane] = load_lanes<T>(src + lane * sample_stride + k0);
    } else {
      for (int64_t lane = 0; lane < L; ++lane)
        rows[lane] = lane < count ? load_lanes<T>(src + lane * sample_stride + k0) : Lanes<T>{};
    }
    transpose_tile<T>(rows);
#pragma GCC unroll 16
    for (int64_t k = 0; k < L; ++k) dst[k0 + k] = rows[k];
  }
  for (int64_t k = k0; k < size; ++k) {
    Lanes<T> column{};
    for (int64_t lane = 0; lane < count; ++lane) column[lane] = static_cast<T>(src[lane * sample_stride + k]);
    dst[k] = column;
  }
}

// dst[lane·size + k] = src[k][lane]: back to one matrix per sample, for the `count` real lanes,
// rounded once where S is narrower than T (store_lanes).
template <typename T, typename S>
void lanes_to_samples(const Lanes<T>* src, int64_t count, int64_t size, S* dst) {
  constexpr int64_t L = kLanes<T>;
  int64_t k0 = 0;
  for (; k0 + L <= size; k0 += L) {
    Lanes<T> rows[L];
#pragma GCC unroll 16
    for (int64_t k = 0; k < L; ++k) rows[k] = src[k0 + k];
    transpose_tile<T>(rows);
    for (int64_t lane = 0; lane < count; ++lane) store_lanes<T>(rows[lane], dst + lane * size + k0);
  }
  for (int64_t k = k0; k < size; ++k)
    for (int64_t lane = 0; lane < count; ++lane) dst[lane * size + k] = static_cast<S>(src[k][lane]);
}

// Strides of a matrix operand, in elements: entry (row, col) is at row·row_stride + col·col_stride.
struct Strides {
  int64_t row, col;
};

// Brings the next block's inputs into the cache while the current block's products run. The
// products are bound by the FMA units and leave the memory idle, and moving a block into lanes
// waits on memory when its samples are not in cache (large batches): Isa::kPrefetchLinesPerTile
// cache lines per register tile spread the transfers over the arithmetic (what it gained, and what
// did not help: docs/cpu_kernels.md, "Where the time goes").
class Prefetcher {
 public:
  static constexpr int64_t kLineBytes = 64;

  // Forgets what is left, and the ranges with it.
  void clear() {
    ranges_.clear();
    next_range_ = 0;
    at_ = end_ = nullptr;
  }
  // Appends the cache lines of bytes [begin, begin + bytes) to what is to be fetched.
  void add(const void* begin, int64_t bytes) {
    const char* first = static_cast<const char*>(begin);
    const char* first_line = first - reinterpret_cast<uintptr_t>(first) % kLineBytes;
    ranges_.push_back({first_line, first + bytes});
  }
  // Fetches the next Isa::kPrefetchLinesPerTile lines; called once per register tile.
  MATNET_ALWAYS_INLINE void advance() {
    for (int line = 0; line < Isa::kPrefetchLinesPerTile; ++line) {
      if (at_ >= end_) {
        if (next_range_ == ranges_.size()) return;
        at_ = ranges_[next_range_].first;
        end_ = ranges_[next_range_].second;
        ++next_range_;
      }
      __builtin_prefetch(at_);
      at_ += kLineBytes;
    }
  }

 private:
  std::vector<std::pair<const char*, const char*>> ranges_;
  size_t next_range_ = 0;
  const char *at_ = nullptr, *end_ = nullptr;
};

// out(x, y) (+)= Σ_l S(x, l) · A(l, y): S a scalar matrix (rows × inner), A and out lane matrices.
// Register tile of XB × YB output vectors: per l, YB vector loads and XB broadcasts feed XB·YB FMAs.
struct ScalarTimesLanes {
  static constexpr bool kFirstIndexedByOutputRow = true;  // S(x, l)
  template <typename T>
  using First = T;
  static constexpr int kTileRows = Isa::kScalarTimesLanesTile[0], kTileCols = Isa::kScalarTimesLanesTile[1];
  template <int XB, int YB, bool Accumulate, typename T>
  static MATNET_ALWAYS_INLINE void tile(const T* s, Strides s_strides, const Lanes<T>* a, Strides a_strides,
                                        Lanes<T>* out, Strides out_strides, int64_t inner) {
    Lanes<T> acc[XB][YB];
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb)
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb)
        acc[xb][yb] = Accumulate ? out[xb * out_strides.row + yb * out_strides.col] : Lanes<T>{};
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
  template <typename T>
  using First = Lanes<T>;
  static constexpr int kTileRows = Isa::kLanesTimesLanesTile[0], kTileCols = Isa::kLanesTimesLanesTile[1];
  template <int XB, int YB, bool Accumulate, typename T>
  static MATNET_ALWAYS_INLINE void tile(const Lanes<T>* a, Strides a_strides, const Lanes<T>* b, Strides b_strides,
                                        Lanes<T>* out, Strides out_strides, int64_t inner) {
    static_assert(Accumulate, "the sums over samples always accumulate");
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
      Lanes<T> row_b[YB];
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) {
        row_b[yb] = *b_at[yb];
        b_at[yb] += b_strides.row;
      }
      // One A vector at a time: XB·YB accumulators + YB + 1 registers in flight.
#pragma GCC unroll 8
      for (int xb = 0; xb < XB; ++xb) {
        const Lanes<T> row_a = *a_at[xb];
        a_at[xb] += a_strides.row;
#pragma GCC unroll 8
        for (int yb = 0; yb < YB; ++yb) acc[xb][yb] += row_a * row_b[yb];
      }
    }
#pragma GCC unroll 8
    for (int xb = 0; xb < XB; ++xb)
#pragma GCC unroll 8
      for (int yb = 0; yb < YB; ++yb) out[xb * out_strides.row + yb * out_strides.col] = acc[xb][yb];
  }
};

// The type of a kernel's first operand, named through the kernel rather than deduced from an
// argument: deduction drops Lanes' scalar alignment (the attribute belongs to the alias), and
// clang then assumes a register-aligned pointer and emits aligned loads for any buffer.
template <typename Kernel, typename T>
using FirstOf = typename Kernel::template First<T>;

// Runs the XB × YB tile for a height × width edge (height ≤ XB, width ≤ YB), counting down from
// the kernel's full tile at compile time.
template <typename Kernel, int XB, int YB, bool Accumulate, typename T>
MATNET_ALWAYS_INLINE void edge_tile(int64_t height, int64_t width, const FirstOf<Kernel, T>* first, Strides first_strides,
                                    const Lanes<T>* second, Strides second_strides, Lanes<T>* out,
                                    Strides out_strides, int64_t inner) {
  if constexpr (XB > 1) {
    if (height < XB)
      return edge_tile<Kernel, XB - 1, YB, Accumulate, T>(height, width, first, first_strides, second,
                                                          second_strides, out, out_strides, inner);
  }
  if constexpr (YB > 1) {
    if (width < YB)
      return edge_tile<Kernel, XB, YB - 1, Accumulate, T>(height, width, first, first_strides, second,
                                                          second_strides, out, out_strides, inner);
  }
  Kernel::template tile<XB, YB, Accumulate, T>(first, first_strides, second, second_strides, out, out_strides,
                                               inner);
}

// out(x, y) (+)= for x < rows, y < cols through Kernel, contracting over `inner`; `second` is the
// lane matrix (l, y), `first` the scalar matrix S(x, l) or the lane matrix A(l, x). Inlined where
// a call site's constant strides pay for a copy of its own (accumulate_lanes_times_lanes: the
// backward's dU and dV sums, whose unit strides then fold into the addressing); otherwise called
// through tiled_product below.
template <typename Kernel, bool Accumulate, typename T>
MATNET_ALWAYS_INLINE void tiled_product_inline(int64_t rows, int64_t cols, int64_t inner,
                                               const FirstOf<Kernel, T>* first, Strides first_strides,
                                               const Lanes<T>* second, Strides second_strides, Lanes<T>* out,
                                               Strides out_strides, Prefetcher& prefetch) {
  constexpr int XB = Kernel::kTileRows, YB = Kernel::kTileCols;
  const int64_t first_x_stride = Kernel::kFirstIndexedByOutputRow ? first_strides.row : first_strides.col;
  // Columns outside: the slice of `second` a column tile reads (YB lane vectors per l) stays in L1
  // while every row tile uses it; `first` is the smaller operand or, for S, tiny.
  for (int64_t y = 0; y < cols; y += YB) {
    for (int64_t x = 0; x < rows; x += XB) {
      const FirstOf<Kernel, T>* f = first + x * first_x_stride;
      const Lanes<T>* sec = second + y * second_strides.col;
      Lanes<T>* o = out + x * out_strides.row + y * out_strides.col;
      prefetch.advance();
      if (x + XB <= rows && y + YB <= cols) {
        Kernel::template tile<XB, YB, Accumulate, T>(f, first_strides, sec, second_strides, o, out_strides, inner);
      } else {
        edge_tile<Kernel, XB, YB, Accumulate, T>(std::min<int64_t>(rows - x, XB), std::min<int64_t>(cols - y, YB),
                                                 f, first_strides, sec, second_strides, o, out_strides, inner);
      }
    }
  }
}

// tiled_product_inline as a function of its own: the strides of scalar_times_lanes' call sites
// are runtime values anyway, and one copy per kernel keeps the build short.
template <typename Kernel, bool Accumulate, typename T>
__attribute__((noinline)) void tiled_product(int64_t rows, int64_t cols, int64_t inner, const FirstOf<Kernel, T>* first,
                                             Strides first_strides, const Lanes<T>* second, Strides second_strides,
                                             Lanes<T>* out, Strides out_strides, Prefetcher& prefetch) {
  tiled_product_inline<Kernel, Accumulate, T>(rows, cols, inner, first, first_strides, second, second_strides, out,
                                              out_strides, prefetch);
}

// out = S · A, or out += S · A when `accumulate`: out(x, y) (+)= Σ_l S(x, l) A(l, y).
template <typename T>
MATNET_ALWAYS_INLINE void scalar_times_lanes(bool accumulate, int64_t rows, int64_t cols, int64_t inner, const T* s,
                                             Strides s_strides, const Lanes<T>* a, Strides a_strides, Lanes<T>* out,
                                             Strides out_strides, Prefetcher& prefetch) {
  if (accumulate)
    tiled_product<ScalarTimesLanes, true, T>(rows, cols, inner, s, s_strides, a, a_strides, out, out_strides, prefetch);
  else
    tiled_product<ScalarTimesLanes, false, T>(rows, cols, inner, s, s_strides, a, a_strides, out, out_strides, prefetch);
}

// out += Aᵀ ⊙· B: out(x, y) += Σ_l A(l, x) ⊙ B(l, y), lane by lane.
template <typename T>
MATNET_ALWAYS_INLINE void accumulate_lanes_times_lanes(int64_t rows, int64_t cols, int64_t inner, const Lanes<T>* a,
                                                       Strides a_strides, const Lanes<T>* b, Strides b_strides,
                                                       Lanes<T>* out, Strides out_strides, Prefetcher& prefetch) {
  tiled_product_inline<LanesTimesLanes, true, T>(rows, cols, inner, a, a_strides, b, b_strides, out, out_strides,
                                                 prefetch);
}

}  // namespace matnet::cpu::MATNET_CPU_CAPABILITY
