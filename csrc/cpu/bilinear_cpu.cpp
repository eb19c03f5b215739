// CPU kernels of matnet::bilinear and matnet::bilinear_backward (design.md §1, §7).
//
// The batch is cut into blocks of samples small enough to stay in L2; blocks are spread over
// threads. Inside a block every product is one BLAS GEMM over the whole block (the samples are laid
// side by side by an in-cache transpose), and the bias, σ and σ' are applied to the cache-resident
// results (elementwise.h). Backward accumulates dU, dV and dB per thread and reduces once at the end.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../bilinear_checks.h"
#include "blas.h"
#include "elementwise.h"

namespace matnet::cpu {
namespace {

// Samples per block: the block's scratch buffers fit in about 256 KiB, and every thread gets work.
int64_t samples_per_block(int64_t batch, int64_t scratch_elements_per_sample, int64_t element_size) {
  static const int64_t kBlockBytes = std::getenv("MATNET_BLOCK_KB") ? std::atoi(std::getenv("MATNET_BLOCK_KB")) * 1024 : 1024 * 1024;
  const int64_t by_cache = kBlockBytes / std::max<int64_t>(1, scratch_elements_per_sample * element_size);
  const int64_t threads = at::get_num_threads();
  const int64_t by_threads = (batch + threads - 1) / threads;
  return std::max<int64_t>(1, std::min(by_cache, by_threads));
}

// dst[j, i, :] = src[i, j, :] for src of shape (rows, cols, width): lays a block's samples side by
// side (or back) so that one GEMM covers them all.
template <typename T>
void swap_leading_axes(const T* src, T* dst, int64_t rows, int64_t cols, int64_t width) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      std::copy_n(src + (i * cols + j) * width, width, dst + (j * rows + i) * width);
}

// Both association orders keep the long dimension (samples × rows) as BLAS's leading M, where
// MKL and OpenBLAS are far faster on these skinny shapes than with it as N, and need no copy
// between the two products.
// dst[j·dst_stride + i] = src[i·src_stride + j] for a rows × cols matrix, in tiles that stay in L1
// (a plain double loop strides one side by a whole row per element and thrashes the cache).
template <typename T>
void transpose_matrix(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 16;
  for (int64_t i0 = 0; i0 < rows; i0 += kTile)
    for (int64_t j0 = 0; j0 < cols; j0 += kTile)
      for (int64_t i = i0; i < std::min(i0 + kTile, rows); ++i)
        for (int64_t j = j0; j < std::min(j0 + kTile, cols); ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

// dst[i, r, c] = src[c, r, i]: a block's dXᵀ, laid out (q, p, count), back into samples (count, p, q).
template <typename T>
void transpose_into_samples(const T* src, T* dst, int64_t count, int64_t p, int64_t q) {
  for (int64_t r = 0; r < p; ++r) transpose_matrix(src + r * count, p * count, dst + r * q, p * q, q, count);
}

template <typename T>
void forward_kernel(const T* x, const T* u, const T* v, const T* bias, T* y, Activation activation,
                    const BilinearSizes& s) {
  const auto [batch, m, n, p, q] = s;
  // Z_i = U X_i Vᵀ, associated the cheaper way (design.md §1).
  const bool right_first = p * q * n + m * p * n <= m * p * q + m * q * n;
  const int64_t scratch = std::max({p * n, m * n, m * q, p * q});
  const int64_t block = samples_per_block(batch, 2 * scratch, sizeof(T));
  const int64_t num_blocks = (batch + block - 1) / block;

  at::parallel_for(0, num_blocks, 1, [&](int64_t first, int64_t last) {
    std::vector<T> buffer_a(block * scratch), buffer_b(block * scratch);
    for (int64_t b = first; b < last; ++b) {
      const int64_t start = b * block, count = std::min(block, batch - start);
      const T* x_block = x + start * p * q;
      BlockLayout z_layout;  // of Z in buffer_b
      if (right_first) {
        // T_iᵀ = V X_iᵀ for the whole block: (n × q)(q × count·p) -> (n, count, p).
        gemm_row_major<T>(false, true, n, count * p, q, v, q, x_block, q, 0, buffer_a.data(), count * p);
        // Z_i = U T_i, reading the (n, count, p) result as (n·count × p): (m × p)(p × n·count) -> (m, n, count).
        gemm_row_major<T>(false, true, m, n * count, p, u, p, buffer_a.data(), p, 0, buffer_b.data(), n * count);
        z_layout = {1, n * count, count};
      } else {
        swap_leading_axes(x_block, buffer_b.data(), count, p, q);
        // W_i = U X_i: (m × p)(p × count·q) -> (m, count, q).
        gemm_row_major<T>(false, false, m, count * q, p, u, p, buffer_b.data(), count * q, 0, buffer_a.data(),
                          count * q);
        // Z_iᵀ = V W_iᵀ, reading W as (m·count × q): (n × q)(q × m·count) -> (n, m, count).
        gemm_row_major<T>(false, true, n, m * count, q, v, q, buffer_a.data(), q, 0, buffer_b.data(), m * count);
        z_layout = {1, count, m * count};
      }
      bias_activation_forward(activation, buffer_b.data(), z_layout, bias, y + start * m * n, count, m, n);
    }
  });
}

// Per-thread partial sums of a gradient that is a sum over samples, reduced once at the end.
template <typename T>
struct ThreadAccumulators {
  int64_t size;
  std::vector<T> partials;
  ThreadAccumulators(bool needed, int64_t size)
      : size(size), partials(needed ? at::get_num_threads() * size : 0, T(0)) {}
  T* for_this_thread() { return partials.empty() ? nullptr : partials.data() + at::get_thread_num() * size; }
  void reduce_into(T* out) const {
    std::fill_n(out, size, T(0));
    for (size_t offset = 0; offset < partials.size(); offset += size)
      for (int64_t k = 0; k < size; ++k) out[k] += partials[offset + k];
  }
};

// dX_i = Uᵀ Δ_i V, dU = Σ_i Δ_i V X_iᵀ, dV = Σ_i Δ_iᵀ U X_i, dB = Σ_i Δ_i (design.md §1), per block
// through R_i = Uᵀ Δ_i (shared by dX and dV) and Q_i = V X_iᵀ, so that every product either has the
// block as BLAS's long M or contracts over it (the per-thread sums dU, dV):
//   dX_iᵀ = Vᵀ R_iᵀ,   dV = Σ_i R_iᵀ X_i,   dU = Σ_i Δ_i Q_i.
template <typename T>
void backward_kernel(const T* grad_y, const T* x, const T* u, const T* v, const T* y, Activation activation,
                     const BilinearSizes& s, const BilinearOutputMask& mask, T* grad_x, T* grad_u, T* grad_v,
                     T* grad_bias) {
  const auto [batch, m, n, p, q] = s;
  const auto [need_x, need_u, need_v, need_bias] = mask;
  // Per block and sample: Δ and its transpose (m·n each), R (p·n), and one buffer for Q, X laid side
  // by side, or dXᵀ (the larger of p·q and n·p).
  const int64_t work = std::max(p * q, n * p);
  const int64_t block = samples_per_block(batch, 2 * m * n + p * n + work, sizeof(T));
  const int64_t num_blocks = (batch + block - 1) / block;
  ThreadAccumulators<T> acc_u(need_u, m * p), acc_v(need_v, n * q), acc_bias(need_bias, m * n);

  at::parallel_for(0, num_blocks, 1, [&](int64_t first, int64_t last) {
    std::vector<T> delta(block * m * n), delta_t(need_u ? block * m * n : 0), r(block * p * n), work_buffer(block * work);
    T* dU = acc_u.for_this_thread();
    T* dV = acc_v.for_this_thread();
    T* dB = acc_bias.for_this_thread();
    for (int64_t b = first; b < last; ++b) {
      const int64_t start = b * block, count = std::min(block, batch - start);
      const T* x_block = x + start * p * q;
      // Δ_i = G_i ⊙ σ'(Y_i) as (m, count, n) and, for dU, as (m, n, count); dB += Σ_i Δ_i.
      activation_backward(activation, grad_y + start * m * n, y + start * m * n, delta.data(),
                          need_u ? delta_t.data() : nullptr, dB, count, m, n);
      if (need_u) {
        // Q_i = V X_iᵀ: (n × q)(q × count·p) -> (n, count, p).
        gemm_row_major<T>(false, true, n, count * p, q, v, q, x_block, q, 0, work_buffer.data(), count * p);
        // dU += Σ_i Δ_i Q_i, contracting over (j, i): (m × n·count)(n·count × p).
        gemm_row_major<T>(false, false, m, p, n * count, delta_t.data(), n * count, work_buffer.data(), p, 1, dU, p);
      }
      if (need_x || need_v) {
        // R_i = Uᵀ Δ_i: (p × m)(m × count·n) -> (p, count, n).
        gemm_row_major<T>(true, false, p, count * n, m, u, p, delta.data(), count * n, 0, r.data(), count * n);
      }
      if (need_v) {
        swap_leading_axes(x_block, work_buffer.data(), count, p, q);  // (p, count, q)
        // dV += Σ_i R_iᵀ X_i, contracting over (r, i): (n × p·count)(p·count × q).
        gemm_row_major<T>(true, false, n, q, p * count, r.data(), n, work_buffer.data(), q, 1, dV, q);
      }
      if (need_x) {
        // dX_iᵀ = Vᵀ R_iᵀ, reading R as (p·count × n): (q × n)(n × p·count) -> (q, p, count).
        gemm_row_major<T>(true, true, q, p * count, n, v, q, r.data(), n, 0, work_buffer.data(), p * count);
        transpose_into_samples(work_buffer.data(), grad_x + start * p * q, count, p, q);
      }
    }
  });
  if (need_u) acc_u.reduce_into(grad_u);
  if (need_v) acc_v.reduce_into(grad_v);
  if (need_bias) acc_bias.reduce_into(grad_bias);
}

at::Tensor bilinear_cpu(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                        const std::optional<at::Tensor>& bias, c10::string_view activation) {
  constexpr const char* op = "matnet::bilinear";
  const Activation parsed = check_bilinear_inputs(op, x, u, v, bias, activation);
  const BilinearSizes sizes = bilinear_sizes(x, u, v);
  at::Tensor y = at::empty_symint(bilinear_output_shape(x, u, v), x.options());
  if (y.numel() == 0) return y;
  const at::Tensor x_c = x.contiguous(), u_c = u.contiguous(), v_c = v.contiguous();
  const at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    forward_kernel<scalar_t>(x_c.const_data_ptr<scalar_t>(), u_c.const_data_ptr<scalar_t>(),
                             v_c.const_data_ptr<scalar_t>(),
                             bias_c.defined() ? bias_c.const_data_ptr<scalar_t>() : nullptr,
                             y.mutable_data_ptr<scalar_t>(), parsed, sizes);
  });
  return y;
}

BilinearGradients bilinear_backward_cpu(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                        const at::Tensor& v, const at::Tensor& y, c10::string_view activation,
                                        BilinearOutputMask mask) {
  constexpr const char* op = "matnet::bilinear_backward";
  const Activation parsed = check_bilinear_backward_inputs(op, grad_y, x, u, v, y, activation);
  const BilinearSizes sizes = bilinear_sizes(x, u, v);
  const auto [m, n] = std::pair{sizes.m, sizes.n};
  at::Tensor grad_x = mask[0] ? at::empty_like(x, at::MemoryFormat::Contiguous) : at::Tensor();
  at::Tensor grad_u = mask[1] ? at::empty({m, sizes.p}, u.options()) : at::Tensor();
  at::Tensor grad_v = mask[2] ? at::empty({n, sizes.q}, v.options()) : at::Tensor();
  at::Tensor grad_bias = mask[3] ? at::empty({m, n}, x.options()) : at::Tensor();
  const at::Tensor g_c = grad_y.contiguous(), x_c = x.contiguous(), u_c = u.contiguous(),
                   v_c = v.contiguous(), y_c = y.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), op, [&] {
    auto out = [](at::Tensor& t) { return t.defined() ? t.mutable_data_ptr<scalar_t>() : nullptr; };
    backward_kernel<scalar_t>(g_c.const_data_ptr<scalar_t>(), x_c.const_data_ptr<scalar_t>(),
                              u_c.const_data_ptr<scalar_t>(), v_c.const_data_ptr<scalar_t>(),
                              y_c.const_data_ptr<scalar_t>(), parsed, sizes, mask, out(grad_x), out(grad_u),
                              out(grad_v), out(grad_bias));
  });
  return {grad_x, grad_u, grad_v, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CPU, m) {
  m.impl("bilinear", &bilinear_cpu);
  m.impl("bilinear_backward", &bilinear_backward_cpu);
}

}  // namespace matnet::cpu
