#include "bilinear_amx.h"

#ifdef MATNET_HAVE_AMX_KERNELS
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../environment.h"
#include "../lanes/bilinear_lanes.h"  // kSumSlots
#include "../parallel.h"

// Everything defined from here on (and nothing the headers above defined) is compiled for AMX.
#if defined(__clang__)
#pragma clang attribute push(                                                                          \
    __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2,amx-tile,amx-bf16"))), \
    apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,bmi2,amx-tile,amx-bf16")
#endif

namespace matnet::cpu::amx {
namespace {

#include "../activation_loops.h"
#include "../bfloat16_rounding.h"

// Every tile is 16 rows of 64 bytes: A, 16 × 32 bfloat16; B, 16 rows of 16 pairs of bfloat16, row t
// of B holding rows 2t and 2t + 1 of the matrix it stands for, interleaved ("pair words"); C,
// 16 × 16 float32. One tile product C += A·B sums 32 products into each entry.
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileInner = 32;
constexpr int64_t kTileColumns = 16;
constexpr int64_t kBytesPerRow = 64;

// Every operand is padded with zeros to multiples of 32 rows and columns: whole row steps of the
// products (two row tiles), whole inner lengths, whole column tiles.
constexpr int64_t kPad = 32;
int64_t padded(int64_t size) { return (size + kPad - 1) / kPad * kPad; }

// Per-thread scratch bounded like the lane kernels': beyond it the GEMM path runs.
constexpr int64_t kScratchBytes = int64_t{4} << 20;

// Multiply-adds per split entry from which the tiles beat the AVX-512 lane kernels (pays_off),
// measured on a Sapphire-Rapids-class Xeon (benchmarks/bench_amx.py): forward 38 (28×28 → 10×10)
// tied and 48 (28×28 → 20×20) won; backward 28 (28×28 → 20×20) lost and 32 (32×32 → 32×32) won.
constexpr int64_t kForwardMinMultiplyAddsPerSplitEntry = 44;
constexpr int64_t kBackwardMinMultiplyAddsPerSplitEntry = 30;

// Samples per task of the forward's parallel_for (../parallel.h), and the fewest per slot of the
// backward's sums: each task configures the tiles and zeroes its scratch once.
constexpr int64_t kSamplesPerTask = 64;
constexpr int64_t kMinSamplesPerSlot = 64;

struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t bytes_per_row[16];
  uint8_t rows[16];
};

// All eight tiles 16 × 64 bytes, for this thread until _tile_release.
void configure_tiles() {
  TileConfig config{};
  config.palette = 1;
  for (int tile = 0; tile < 8; ++tile) {
    config.rows[tile] = kTileRows;
    config.bytes_per_row[tile] = kBytesPerRow;
  }
  _tile_loadconfig(&config);
}

__mmask16 first_lanes16(int64_t count) { return _bzhi_u32(~0u, unsigned(std::clamp<int64_t>(count, 0, 16))); }
__mmask32 first_lanes32(int64_t count) { return _bzhi_u32(~0u, unsigned(std::clamp<int64_t>(count, 0, 32))); }

// ---- Tile products ------------------------------------------------------------------------

// One term of a product: A as bfloat16 rows (a_stride entries apart), B as rows of pair words
// (b_stride words apart).
struct Term {
  const c10::BFloat16* a;
  int64_t a_stride;
  const uint32_t* b;
  int64_t b_stride;
};

// C (+)= Σ_terms A·B: C is rows × columns (c_stride floats apart), the inner length `inner`, all
// multiples of kPad. Without `accumulate`, C is overwritten. C is worked on 32 × 32 at a time, in
// tiles 0–3, so four independent chains of tile products are in flight; tiles 4–5 hold A's two row
// tiles, 6–7 B's two column tiles, loaded again only where a term's operand differs from the last
// term's (the three parts of a split operand share the other). Tile numbers are literals: GCC's
// intrinsics paste them into the assembly.
template <int kTerms>
void tile_product(const Term (&terms)[kTerms], int64_t rows, int64_t columns, int64_t inner, bool accumulate,
                  float* c, int64_t c_stride) {
  const int64_t c_bytes = c_stride * 4;
  for (int64_t row = 0; row < rows; row += 2 * kTileRows)
    for (int64_t column = 0; column < columns; column += 2 * kTileColumns) {
      float* c00 = c + row * c_stride + column;
      float* c10 = c00 + kTileRows * c_stride;
      if (accumulate) {
        _tile_loadd(0, c00, c_bytes);
        _tile_loadd(1, c00 + kTileColumns, c_bytes);
        _tile_loadd(2, c10, c_bytes);
        _tile_loadd(3, c10 + kTileColumns, c_bytes);
      } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
      }
      for (int64_t k = 0; k < inner; k += kTileInner)
        for (int s = 0; s < kTerms; ++s) {
          const Term& term = terms[s];
          if (s == 0 || term.a != terms[s - 1].a) {
            _tile_loadd(4, term.a + row * term.a_stride + k, term.a_stride * 2);
            _tile_loadd(5, term.a + (row + kTileRows) * term.a_stride + k, term.a_stride * 2);
          }
          if (s == 0 || term.b != terms[s - 1].b) {
            _tile_loadd(6, term.b + k / 2 * term.b_stride + column, term.b_stride * 4);
            _tile_loadd(7, term.b + k / 2 * term.b_stride + column + kTileColumns, term.b_stride * 4);
          }
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
      _tile_stored(0, c00, c_bytes);
      _tile_stored(1, c00 + kTileColumns, c_bytes);
      _tile_stored(2, c10, c_bytes);
      _tile_stored(3, c10 + kTileColumns, c_bytes);
    }
}

// ---- Operands -----------------------------------------------------------------------------

// A float32 matrix split exactly into three bfloat16 parts, each padded like its operand; part s
// starts s·part_size entries (rows) or words (pairs) after the first.
template <typename Entry>
struct Split {
  std::vector<Entry> data;
  int64_t part_size, stride;
  Split(int64_t rows, int64_t stride_) : data(3 * rows * stride_), part_size(rows * stride_), stride(stride_) {}
  const Entry* part(int s) const { return data.data() + s * part_size; }
};
using SplitRows = Split<c10::BFloat16>;  // as A: rows of bfloat16
using SplitPairs = Split<uint32_t>;      // as B: rows of pair words

// 16 floats' parts, each a float32 whose low 16 bits are zero (a bfloat16 in the upper half): hi is
// `a` truncated to its upper 16 bits; a − hi (exact: what truncation dropped) is split the same way;
// what then remains has at most 8 significant bits. A non-finite `a` goes whole into hi, nothing into
// mid and lo (inf − inf would be NaN). Truncation keeps a NaN a NaN here: every matrix split is a
// widened bfloat16 or an arithmetic result, whose NaN is quiet (bit 22, in the upper half).
struct Parts {
  __m512i hi, mid, lo;
};

Parts split(__m512 a) {
  const __m512i upper = _mm512_set1_epi32(int(0xFFFF0000u));
  const __m512i hi = _mm512_and_si512(_mm512_castps_si512(a), upper);
  const __mmask16 finite = static_cast<__mmask16>(~_mm512_fpclass_ps_mask(a, 0x99));  // not NaN, not ±inf
  const __m512 rest = _mm512_maskz_sub_ps(finite, a, _mm512_castsi512_ps(hi));
  const __m512i mid = _mm512_and_si512(_mm512_castps_si512(rest), upper);
  const __m512i lo = _mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(rest, _mm512_castsi512_ps(mid))), upper);
  return {hi, mid, lo};
}

// The upper halves of the 32 words of (a, b): 32 bfloat16, a's first.
__m512i upper_halves(__m512i a, __m512i b) {
  alignas(64) static const uint16_t odd[32] = {1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
                                                33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
  return _mm512_permutex2var_epi16(a, _mm512_load_si512(odd), b);
}

// Word k = low half from `even`'s word k, high half from `odd`'s: both parts (low halves zero).
__m512i pair_words(__m512i even, __m512i odd) { return _mm512_or_si512(odd, _mm512_srli_epi32(even, 16)); }

// The rows × columns float32 matrix at `src` (src_stride apart) split into parts as A. Only the
// matrix is read (whatever the padding of `src` holds, the parts' padding stays zero).
void split_rows(const float* src, int64_t src_stride, int64_t rows, int64_t columns, SplitRows& out) {
  c10::BFloat16* dst = out.data.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; c += 32) {
      const float* at = src + r * src_stride + c;
      const Parts left = split(_mm512_maskz_loadu_ps(first_lanes16(columns - c), at));
      const Parts right = split(_mm512_maskz_loadu_ps(first_lanes16(columns - c - 16), at + 16));
      c10::BFloat16* to = dst + r * out.stride + c;
      _mm512_storeu_si512(to, upper_halves(left.hi, right.hi));
      _mm512_storeu_si512(to + out.part_size, upper_halves(left.mid, right.mid));
      _mm512_storeu_si512(to + 2 * out.part_size, upper_halves(left.lo, right.lo));
    }
}

// The same matrix split into parts as B: word (t, c) of a part holds that part of entries (2t, c)
// and (2t + 1, c).
void split_pairs(const float* src, int64_t src_stride, int64_t rows, int64_t columns, SplitPairs& out) {
  uint32_t* dst = out.data.data();
  const Parts zero{};
  for (int64_t t = 0; 2 * t < rows; ++t)
    for (int64_t c = 0; c < columns; c += 16) {
      const __mmask16 valid = first_lanes16(columns - c);
      const float* at = src + 2 * t * src_stride + c;
      const Parts even = split(_mm512_maskz_loadu_ps(valid, at));
      const Parts odd = 2 * t + 1 < rows ? split(_mm512_maskz_loadu_ps(valid, at + src_stride)) : zero;
      uint32_t* to = dst + t * out.stride + c;
      _mm512_storeu_si512(to, pair_words(even.hi, odd.hi));
      _mm512_storeu_si512(to + out.part_size, pair_words(even.mid, odd.mid));
      _mm512_storeu_si512(to + 2 * out.part_size, pair_words(even.lo, odd.lo));
    }
}

// A weight (given as float32 holding bfloat16 values) as A: entry (r, c) = M(r, c), where M(r, c)
// is m[r·row_step + c·column_step] (so a transpose is a swap of the steps); padded.
std::vector<c10::BFloat16> weight_rows(const float* m, int64_t rows, int64_t columns, int64_t row_step,
                                       int64_t column_step) {
  const int64_t stride = padded(columns);
  std::vector<c10::BFloat16> out(padded(rows) * stride);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c) out[r * stride + c] = c10::BFloat16(m[r * row_step + c * column_step]);
  return out;
}

// The same as B: word (t, c) = M(2t, c) | M(2t + 1, c) << 16; padded.
std::vector<uint32_t> weight_pairs(const float* m, int64_t rows, int64_t columns, int64_t row_step,
                                   int64_t column_step) {
  const int64_t stride = padded(columns);
  std::vector<uint32_t> out(padded(rows) / 2 * stride);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c)
      out[r / 2 * stride + c] |= uint32_t(c10::BFloat16(m[r * row_step + c * column_step]).x) << (16 * (r % 2));
  return out;
}

// X_i (p × q) into its zero-padded buffer (`stride` entries a row), 32 entries at a time; whether
// every entry is finite (a bfloat16 whose exponent bits are not all ones).
bool copy_sample(const c10::BFloat16* x, int64_t p, int64_t q, c10::BFloat16* out, int64_t stride) {
  const __m512i exponent = _mm512_set1_epi16(0x7F80);
  __mmask32 non_finite = 0;
  for (int64_t r = 0; r < p; ++r)
    for (int64_t c = 0; c < q; c += 32) {
      const __mmask32 valid = first_lanes32(q - c);
      const __m512i entries = _mm512_maskz_loadu_epi16(valid, x + r * q + c);
      non_finite |= _mm512_mask_cmpeq_epi16_mask(valid, _mm512_and_si512(entries, exponent), exponent);
      _mm512_mask_storeu_epi16(out + r * stride + c, valid, entries);
    }
  return non_finite == 0;
}

// dU += P Xᵀ and dVᵀ += Xᵀ R (where wanted) in plain float32 loops, for a sample whose X holds an
// inf or NaN: a tile product would multiply the split parts of P or R, some of them 0, by that inf
// (0·inf = NaN) where the float32 product is ±inf. P: m × q (p_stride apart), R: p × n (r_stride
// apart), X padded (x_stride), the sums as in SumLayout.
void add_sample_sums_in_float32(const c10::BFloat16* x, int64_t x_stride, int64_t m, int64_t n, int64_t p, int64_t q,
                                const float* p_matrix, int64_t p_stride, const float* r_matrix, int64_t r_stride,
                                float* sum_u, int64_t u_stride, float* sum_v_t, int64_t v_t_stride) {
  for (int64_t r = 0; r < p; ++r)
    for (int64_t c = 0; c < q; ++c) {
      const float x_rc = float(x[r * x_stride + c]);
      if (sum_u != nullptr)
        for (int64_t a = 0; a < m; ++a) sum_u[a * u_stride + r] += p_matrix[a * p_stride + c] * x_rc;
      if (sum_v_t != nullptr)
        for (int64_t k = 0; k < n; ++k) sum_v_t[c * v_t_stride + k] += x_rc * r_matrix[r * r_stride + k];
    }
}

// One stage of a 16 × 16 transpose of 32-bit words in 16 registers: between rows i and i + H
// (i & H == 0) the off-diagonal H-wide blocks swap places; stages H = 8, 4, 2, 1 transpose.
template <int H>
void transpose_stage(__m512i* rows) {
  alignas(64) int32_t keep[16], take[16];
  for (int c = 0; c < 16; ++c) {
    keep[c] = (c & H) ? 16 + c - H : c;
    take[c] = (c & H) ? 16 + c : c + H;
  }
  const __m512i keep_index = _mm512_load_si512(keep), take_index = _mm512_load_si512(take);
  for (int i = 0; i < 16; ++i) {
    if (i & H) continue;
    const __m512i upper = _mm512_permutex2var_epi32(rows[i], keep_index, rows[i + H]);
    rows[i + H] = _mm512_permutex2var_epi32(rows[i], take_index, rows[i + H]);
    rows[i] = upper;
  }
}

// A padded sample X (rows × columns bfloat16, both multiples of kPad) as the operands of Xᵀ: B, word
// (t, r) = X(r, 2t) | X(r, 2t + 1) << 16, i.e. X's pair words transposed; and A, Xᵀ itself, whose rows
// 2t and 2t + 1 are the low and high halves of word row t. Blocks past p rows or q columns stay 0.
void transpose_sample(const c10::BFloat16* x, int64_t p, int64_t q, int64_t rows, int64_t columns,
                      uint32_t* x_t_pairs, c10::BFloat16* x_t) {
  const uint32_t* words = reinterpret_cast<const uint32_t*>(x);
  const int64_t word_columns = columns / 2;
  for (int64_t r0 = 0; r0 < p; r0 += 16)
    for (int64_t t0 = 0; 2 * t0 < q; t0 += 16) {
      __m512i block[16];
      for (int i = 0; i < 16; ++i) block[i] = _mm512_loadu_si512(words + (r0 + i) * word_columns + t0);
      transpose_stage<8>(block);
      transpose_stage<4>(block);
      transpose_stage<2>(block);
      transpose_stage<1>(block);
      for (int k = 0; k < 16; ++k) {
        const int64_t t = t0 + k;
        _mm512_storeu_si512(x_t_pairs + t * rows + r0, block[k]);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(x_t + 2 * t * rows + r0), _mm512_cvtepi32_epi16(block[k]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(x_t + (2 * t + 1) * rows + r0),
                            _mm512_cvtepi32_epi16(_mm512_srli_epi32(block[k], 16)));
      }
    }
}

// Asks for the cache lines of `bytes` bytes from `begin`: the next sample's inputs, fetched while
// this sample's products run (the tiles leave the memory idle; a sample's first reads would
// otherwise wait on it).
void prefetch(const void* begin, int64_t bytes) {
  const char* at = static_cast<const char*>(begin);
  for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(at + offset);
}

// ---- Widening and rounding ----------------------------------------------------------------

// `count` bfloat16 (≤ 16) widened to float32: their bits are float32's upper half.
__m512 widen(const c10::BFloat16* src, int64_t count) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(first_lanes16(count), src)), 16));
}

void widen_all(const c10::BFloat16* src, int64_t size, float* dst) {
  for (int64_t k = 0; k < size; k += 16) _mm512_mask_storeu_ps(dst + k, first_lanes16(size - k), widen(src + k, size - k));
}

// `count` floats (≤ 16) rounded to the nearest bfloat16 (../bfloat16_rounding.h).
void store_rounded(__m512 values, int64_t count, c10::BFloat16* dst) {
  using Bits32 __attribute__((vector_size(64))) = uint32_t;
  const __m512i rounded = reinterpret_cast<__m512i>(bfloat16_rounded(reinterpret_cast<Bits32>(values)));
  _mm256_mask_storeu_epi16(dst, first_lanes16(count), _mm512_cvtepi32_epi16(rounded));
}

// The rows × columns matrix at `src` (src_stride apart) rounded into the contiguous `dst`.
void round_matrix(const float* src, int64_t src_stride, int64_t rows, int64_t columns, c10::BFloat16* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; c += 16)
      store_rounded(_mm512_maskz_loadu_ps(first_lanes16(columns - c), src + r * src_stride + c), columns - c,
                    dst + r * columns + c);
}

// ---- Forward ------------------------------------------------------------------------------

// Input j's weights as the forward's tiles read them: Vᵀ as B of T = X Vᵀ, U as A of U T.
struct ForwardWeights {
  int64_t p, q;
  std::vector<uint32_t> v_t_pairs;   // (padded q / 2) × padded n
  std::vector<c10::BFloat16> u_rows;  // padded m × padded p
  ForwardWeights(const BilinearInput<float, c10::BFloat16>& in, int64_t m, int64_t n)
      : p(in.p), q(in.q), v_t_pairs(weight_pairs(in.v, in.q, n, 1, in.q)), u_rows(weight_rows(in.u, m, in.p, in.p, 1)) {}
};

// A thread's forward buffers for one input, zero-filled once: X_i padded, T_i, T_i's parts as B.
struct ForwardScratch {
  std::vector<c10::BFloat16> x;
  std::vector<float> t;
  SplitPairs t_pairs;
  ForwardScratch(int64_t p, int64_t q, int64_t n)
      : x(padded(p) * padded(q)), t(padded(p) * padded(n)), t_pairs(padded(p) / 2, padded(n)) {}
};

int64_t forward_scratch_bytes(const ForwardProblem16& problem) {
  const int64_t m = padded(problem.m), n = padded(problem.n);
  int64_t bytes = m * n * 4 + problem.m * problem.n * 4;
  for (const auto& in : problem.inputs) {
    const int64_t p = padded(in.p), q = padded(in.q);
    bytes += p * q * 2 + p * n * 4 + 3 * p / 2 * n * 4;
  }
  return bytes;
}

// Y_i = σ(Z_i + B) from Z_i (stride z_stride), each entry rounded once; `values`: m·n floats.
void activate_sample(const ForwardProblem16& problem, const float* z, int64_t z_stride, float* values,
                     c10::BFloat16* y) {
  const int64_t m = problem.m, n = problem.n;
  for (int64_t a = 0; a < m; ++a)
    for (int64_t k = 0; k < n; k += 16) {
      const __mmask16 valid = first_lanes16(n - k);
      __m512 sum = _mm512_maskz_loadu_ps(valid, z + a * z_stride + k);
      if (problem.bias != nullptr) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(valid, problem.bias + a * n + k));
      _mm512_mask_storeu_ps(values + a * n + k, valid, sum);
    }
  activate_in_place(problem.activation, values, m * n);
  round_matrix(values, m * n, 1, m * n, y);
}

// ---- Backward -----------------------------------------------------------------------------

// Input j's weights as the backward's tiles read them: V as B of Δ V and R V, Uᵀ as A of Uᵀ Δ.
struct BackwardWeights {
  int64_t p, q;
  std::vector<uint32_t> v_pairs;       // (padded n / 2) × padded q
  std::vector<c10::BFloat16> u_t_rows;  // padded p × padded m
  BackwardWeights(const BilinearInput<float, c10::BFloat16>& in, int64_t m, int64_t n)
      : p(in.p), q(in.q), v_pairs(weight_pairs(in.v, n, in.q, in.q, 1)), u_t_rows(weight_rows(in.u, in.p, m, 1, in.p)) {}
};

// A thread's backward buffers for one input (zero-filled once), with the names of docs/design.md §2:
// X_i padded and as the operands of Xᵀ; P_i = Δ_i V and R_i = Uᵀ Δ_i with their parts; dX_i.
struct BackwardScratch {
  std::vector<c10::BFloat16> x, x_t;
  std::vector<uint32_t> x_t_pairs;
  std::vector<float> p, r, dx;
  SplitRows p_rows, r_rows;
  SplitPairs r_pairs;
  BackwardScratch(int64_t p_, int64_t q_, int64_t m_, int64_t n_)
      : x(padded(p_) * padded(q_)), x_t(padded(q_) * padded(p_)), x_t_pairs(padded(q_) / 2 * padded(p_)),
        p(padded(m_) * padded(q_)), r(padded(p_) * padded(n_)), dx(padded(p_) * padded(q_)),
        p_rows(padded(m_), padded(q_)), r_rows(padded(p_), padded(n_)), r_pairs(padded(p_) / 2, padded(n_)) {}
};

int64_t backward_scratch_bytes(const BackwardProblem16& problem) {
  const int64_t m = padded(problem.m), n = padded(problem.n);
  int64_t bytes = 2 * problem.m * problem.n * 4 + 3 * m * n * 2 + 3 * m / 2 * n * 4 + problem.m * problem.n * 4;
  for (const auto& in : problem.inputs) {
    const int64_t p = padded(in.p), q = padded(in.q);
    bytes += 3 * p * q * 2 + (m * q + p * n + p * q) * 4 + 3 * (m * q + p * n) * 2 + 3 * p / 2 * n * 4;
    bytes += (m * p + q * n) * 4;  // the slot's sums dU and dVᵀ
  }
  return bytes;
}

// Where a slot's sums live: dU_j (padded m × padded p_j) and dV_jᵀ (padded q_j × padded n) for every
// input, then dB (m × n).
struct SumLayout {
  std::vector<int64_t> u_offset, v_t_offset;
  int64_t bias_offset, size;
  explicit SumLayout(const BackwardProblem16& problem) {
    int64_t at = 0;
    for (const auto& in : problem.inputs) {
      u_offset.push_back(at);
      at += padded(problem.m) * padded(in.p);
      v_t_offset.push_back(at);
      at += padded(in.q) * padded(problem.n);
    }
    bias_offset = at;
    size = at + problem.m * problem.n;
  }
};

// A thread's buffers shared by the inputs: G_i then Δ_i, Y_i, and Δ_i's parts as A and as B.
struct DeltaScratch {
  std::vector<float> delta, y;
  SplitRows rows;
  SplitPairs pairs;
  DeltaScratch(int64_t m, int64_t n) : delta(m * n), y(m * n), rows(padded(m), padded(n)), pairs(padded(m) / 2, padded(n)) {}
};

// Sample i's part of the backward: dX_i^j, and its terms of the slot's sums (docs/design.md §2):
//   Δ = G ⊙ σ'(Z),  P = Δ V,  R = Uᵀ Δ,  dX = R V,  dU += P Xᵀ,  dVᵀ += Xᵀ R,  dB += Δ.
void backward_sample(const BackwardProblem16& problem, const std::vector<BackwardWeights>& weights,
                     const SumLayout& layout, int64_t i, DeltaScratch& delta, std::vector<BackwardScratch>& scratch,
                     float* sums) {
  const int64_t m = problem.m, n = problem.n, mn = m * n, m_pad = padded(m), n_pad = padded(n);
  if (i + 1 < problem.batch) {
    prefetch(problem.grad_y + (i + 1) * problem.grad_y_sample_stride, mn * 2);
    if (problem.activation != Activation::Identity) prefetch(problem.y + (i + 1) * mn, mn * 2);
    for (size_t j = 0; j < weights.size(); ++j) {
      const auto& in = problem.inputs[j];
      if (problem.grads[j].u != nullptr || problem.grads[j].v != nullptr) prefetch(in.x + (i + 1) * in.p * in.q, in.p * in.q * 2);
    }
  }
  widen_all(problem.grad_y + i * problem.grad_y_sample_stride, mn, delta.delta.data());
  if (problem.activation != Activation::Identity) {
    widen_all(problem.y + i * mn, mn, delta.y.data());
    backpropagate_activation(problem.activation, delta.delta.data(), delta.y.data(), mn);
  }
  if (problem.grad_bias != nullptr) {
    float* sum = sums + layout.bias_offset;
    for (int64_t k = 0; k < mn; ++k) sum[k] += delta.delta[k];
  }
  split_rows(delta.delta.data(), n, m, n, delta.rows);
  split_pairs(delta.delta.data(), n, m, n, delta.pairs);
  for (size_t j = 0; j < weights.size(); ++j) {
    const BackwardWeights& w = weights[j];
    const InputGradients<float, c10::BFloat16>& out = problem.grads[j];
    BackwardScratch& s = scratch[j];
    const int64_t p = w.p, q = w.q, p_pad = padded(p), q_pad = padded(q);
    bool x_finite = true;
    if (out.u != nullptr || out.v != nullptr) {
      x_finite = copy_sample(problem.inputs[j].x + i * p * q, p, q, s.x.data(), q_pad);
      transpose_sample(s.x.data(), p, q, p_pad, q_pad, s.x_t_pairs.data(), s.x_t.data());
    }
    if (out.u != nullptr) {
      const Term delta_v[3] = {{delta.rows.part(2), n_pad, w.v_pairs.data(), q_pad},
                               {delta.rows.part(1), n_pad, w.v_pairs.data(), q_pad},
                               {delta.rows.part(0), n_pad, w.v_pairs.data(), q_pad}};
      tile_product(delta_v, m_pad, q_pad, n_pad, false, s.p.data(), q_pad);
    }
    if (out.x != nullptr || out.v != nullptr) {
      const Term u_t_delta[3] = {{w.u_t_rows.data(), m_pad, delta.pairs.part(2), n_pad},
                                 {w.u_t_rows.data(), m_pad, delta.pairs.part(1), n_pad},
                                 {w.u_t_rows.data(), m_pad, delta.pairs.part(0), n_pad}};
      tile_product(u_t_delta, p_pad, n_pad, m_pad, false, s.r.data(), n_pad);
    }
    if (!x_finite) {
      add_sample_sums_in_float32(s.x.data(), q_pad, m, n, p, q, s.p.data(), q_pad, s.r.data(), n_pad,
                                 out.u != nullptr ? sums + layout.u_offset[j] : nullptr, p_pad,
                                 out.v != nullptr ? sums + layout.v_t_offset[j] : nullptr, n_pad);
    }
    if (out.u != nullptr && x_finite) {
      split_rows(s.p.data(), q_pad, m, q, s.p_rows);
      const Term p_x_t[3] = {{s.p_rows.part(2), q_pad, s.x_t_pairs.data(), p_pad},
                             {s.p_rows.part(1), q_pad, s.x_t_pairs.data(), p_pad},
                             {s.p_rows.part(0), q_pad, s.x_t_pairs.data(), p_pad}};
      tile_product(p_x_t, m_pad, p_pad, q_pad, true, sums + layout.u_offset[j], p_pad);
    }
    if (out.v != nullptr && x_finite) {
      split_pairs(s.r.data(), n_pad, p, n, s.r_pairs);
      const Term x_t_r[3] = {{s.x_t.data(), p_pad, s.r_pairs.part(2), n_pad},
                             {s.x_t.data(), p_pad, s.r_pairs.part(1), n_pad},
                             {s.x_t.data(), p_pad, s.r_pairs.part(0), n_pad}};
      tile_product(x_t_r, q_pad, n_pad, p_pad, true, sums + layout.v_t_offset[j], n_pad);
    }
    if (out.x != nullptr) {
      split_rows(s.r.data(), n_pad, p, n, s.r_rows);
      const Term r_v[3] = {{s.r_rows.part(2), n_pad, w.v_pairs.data(), q_pad},
                           {s.r_rows.part(1), n_pad, w.v_pairs.data(), q_pad},
                           {s.r_rows.part(0), n_pad, w.v_pairs.data(), q_pad}};
      tile_product(r_v, p_pad, q_pad, n_pad, false, s.dx.data(), q_pad);
      round_matrix(s.dx.data(), q_pad, p, q, out.x + i * p * q);
    }
  }
}

// Whether every weight entry is finite (see can_take in bilinear_amx.h).
template <typename Problem>
bool weights_finite(const Problem& problem) {
  const int64_t m = problem.m, n = problem.n;
  for (const auto& in : problem.inputs) {
    if (!std::all_of(in.u, in.u + m * in.p, [](float w) { return std::isfinite(w); })) return false;
    if (!std::all_of(in.v, in.v + n * in.q, [](float w) { return std::isfinite(w); })) return false;
  }
  return true;
}

// MATNET_AMX_EVERYWHERE=1 (read at first use): the tiles take every problem they can, paying off or
// not; for measuring where they do (benchmarks/bench_amx.py).
bool tiles_everywhere() {
  static const bool everywhere = environment_flag("MATNET_AMX_EVERYWHERE");
  return everywhere;
}

}  // namespace

bool can_take(const ForwardProblem16& problem) {
  return forward_scratch_bytes(problem) <= kScratchBytes && weights_finite(problem);
}

bool can_take(const BackwardProblem16& problem) {
  return backward_scratch_bytes(problem) <= kScratchBytes && weights_finite(problem);
}

// Forward, per input: T = X Vᵀ (p·q·n multiply-adds) and U T (m·p·n) per split entry of T (p·n).
bool pays_off(const ForwardProblem16& problem) {
  if (tiles_everywhere()) return true;
  const int64_t m = problem.m, n = problem.n;
  int64_t multiply_adds = 0, split = 0;
  for (const auto& in : problem.inputs) {
    multiply_adds += in.p * in.q * n + m * in.p * n;
    split += in.p * n;
  }
  return split > 0 && multiply_adds >= kForwardMinMultiplyAddsPerSplitEntry * split;
}

// Backward: Δ (m·n, split twice) feeds P = Δ V (m·n·q) and R = Uᵀ Δ (p·m·n); P (m·q) feeds
// dU += P Xᵀ (m·q·p); R (p·n) feeds dVᵀ += Xᵀ R (q·p·n) and dX = R V (p·n·q), split once for each.
bool pays_off(const BackwardProblem16& problem) {
  if (tiles_everywhere()) return true;
  const int64_t m = problem.m, n = problem.n;
  int64_t multiply_adds = 0, split = 2 * m * n;
  for (size_t j = 0; j < problem.inputs.size(); ++j) {
    const int64_t p = problem.inputs[j].p, q = problem.inputs[j].q;
    const InputGradients<float, c10::BFloat16>& out = problem.grads[j];
    if (out.u != nullptr) {
      multiply_adds += m * n * q + m * q * p;
      split += m * q;
    }
    if (out.v != nullptr || out.x != nullptr) multiply_adds += p * m * n;
    if (out.v != nullptr) {
      multiply_adds += q * p * n;
      split += p * n;
    }
    if (out.x != nullptr) {
      multiply_adds += p * n * q;
      split += p * n;
    }
  }
  return split > 0 && multiply_adds >= kBackwardMinMultiplyAddsPerSplitEntry * split;
}

// Per sample i and input j: T = X Vᵀ, then Z (+)= U T through T's parts (the smallest first).
void run(const ForwardProblem16& problem) {
  const int64_t m = problem.m, n = problem.n, m_pad = padded(m), n_pad = padded(n);
  std::vector<ForwardWeights> weights;
  for (const auto& in : problem.inputs) weights.emplace_back(in, m, n);
  parallel_for(0, problem.batch, kSamplesPerTask, [&](int64_t first, int64_t last) {
    std::vector<ForwardScratch> scratch;
    for (const ForwardWeights& w : weights) scratch.emplace_back(w.p, w.q, n);
    std::vector<float> z(m_pad * n_pad), values(m * n);
    configure_tiles();
    for (int64_t i = first; i < last; ++i) {
      if (i + 1 < last)
        for (const auto& in : problem.inputs) prefetch(in.x + (i + 1) * in.p * in.q, in.p * in.q * 2);
      for (size_t j = 0; j < weights.size(); ++j) {
        const ForwardWeights& w = weights[j];
        ForwardScratch& s = scratch[j];
        const int64_t p_pad = padded(w.p), q_pad = padded(w.q);
        copy_sample(problem.inputs[j].x + i * w.p * w.q, w.p, w.q, s.x.data(), q_pad);
        const Term x_v_t[1] = {{s.x.data(), q_pad, w.v_t_pairs.data(), n_pad}};
        tile_product(x_v_t, p_pad, n_pad, q_pad, false, s.t.data(), n_pad);
        split_pairs(s.t.data(), n_pad, w.p, n, s.t_pairs);
        const Term u_t[3] = {{w.u_rows.data(), p_pad, s.t_pairs.part(2), n_pad},
                             {w.u_rows.data(), p_pad, s.t_pairs.part(1), n_pad},
                             {w.u_rows.data(), p_pad, s.t_pairs.part(0), n_pad}};
        tile_product(u_t, m_pad, n_pad, p_pad, j > 0, z.data(), n_pad);
      }
      activate_sample(problem, z.data(), n_pad, values.data(), problem.y + i * m * n);
    }
    _tile_release();
  });
}

// The samples are cut into slots of consecutive samples, each summed in order into its own sums;
// the slots are then added in order. Neither step depends on which thread ran which slot.
void run(const BackwardProblem16& problem) {
  const int64_t m = problem.m, n = problem.n;
  std::vector<BackwardWeights> weights;
  for (const auto& in : problem.inputs) weights.emplace_back(in, m, n);
  const SumLayout layout(problem);
  const int64_t slots = std::clamp<int64_t>(problem.batch / kMinSamplesPerSlot, 1, kSumSlots);
  std::vector<float> slot_sums(slots * layout.size);
  parallel_for(0, slots, 1, [&](int64_t first_slot, int64_t last_slot) {
    DeltaScratch delta(m, n);
    std::vector<BackwardScratch> scratch;
    for (const BackwardWeights& w : weights) scratch.emplace_back(w.p, w.q, m, n);
    configure_tiles();
    for (int64_t slot = first_slot; slot < last_slot; ++slot)
      for (int64_t i = slot * problem.batch / slots; i < (slot + 1) * problem.batch / slots; ++i)
        backward_sample(problem, weights, layout, i, delta, scratch, slot_sums.data() + slot * layout.size);
    _tile_release();
  });
  // out(r, c) = Σ_slots sum(r·row_step + c·column_step), slot by slot.
  const auto reduce_into = [&](float* out, int64_t offset, int64_t rows, int64_t columns, int64_t row_step,
                               int64_t column_step) {
    if (out == nullptr) return;
    std::fill(out, out + rows * columns, 0.0f);
    for (int64_t slot = 0; slot < slots; ++slot) {
      const float* sum = slot_sums.data() + slot * layout.size + offset;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < columns; ++c) out[r * columns + c] += sum[r * row_step + c * column_step];
    }
  };
  for (size_t j = 0; j < weights.size(); ++j) {
    const int64_t p = weights[j].p, q = weights[j].q;
    reduce_into(problem.grads[j].u, layout.u_offset[j], m, p, padded(p), 1);
    reduce_into(problem.grads[j].v, layout.v_t_offset[j], n, q, 1, padded(n));
  }
  reduce_into(problem.grad_bias, layout.bias_offset, m, n, n, 1);
}

}  // namespace matnet::cpu::amx

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // MATNET_HAVE_AMX_KERNELS
