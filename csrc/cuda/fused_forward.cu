// Fused forward of the bilinear layer, Y_i = σ(U X_i Vᵀ + B), one kernel (design.md §1, §7).
//
// A persistent thread block stages U and Vᵀ in shared memory once, then walks tiles of S samples:
// it stages the tile's X_i, forms the first product for all S samples at once, then the second,
// adding the bias and applying σ in registers and writing each Y_i once. X is read once and Y
// written once, so the kernel moves the minimum number of bytes; all arithmetic is in the
// accumulation type (float32 for 16-bit inputs, rounded once when Y is written).
#include "accumulate_type.cuh"
#include "bilinear_kernels.h"
#include "block_products.cuh"
#include "kernel_launch.cuh"
#include "tile_staging.cuh"

namespace matnet::cuda {
namespace {

template <Activation A, typename T>
__global__ void __launch_bounds__(kThreads, kResidentBlocks)
    fused_forward_kernel(const T* __restrict__ x, const T* __restrict__ u, const T* __restrict__ v,
                         const T* __restrict__ bias, T* __restrict__ y, FusedPlan plan, bool x_aligned) {
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const BilinearShape shape = plan.shape;
  const int m = shape.m, n = shape.n, p = shape.p, q = shape.q, tile_samples = plan.samples_per_tile;
  const ForwardLayout layout = forward_layout(shape, tile_samples, plan.right_product_first);
  Acc* shared = reinterpret_cast<Acc*>(dynamic_shared_memory());
  Acc* u_s = shared + layout.u;                       // U (m×p), row-major
  Acc* v_transposed_s = shared + layout.v_transposed;  // Vᵀ (q×n), row-major
  Acc* x_s = shared + layout.x;                       // X_i (p×q) of the tile's samples
  Acc* intermediate_s = shared + layout.intermediate;
  stage(u, m * p, false, u_s);
  stage_transposed(v, n, q, v_transposed_s);

  const int64_t tiles = (shape.batch + tile_samples - 1) / tile_samples;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t first = tile * tile_samples;
    const int samples = static_cast<int>(shape.batch - first < tile_samples ? shape.batch - first : tile_samples);
    T* y_tile = y + first * m * n;
    // Z + B → σ → Y, once per entry of the tile: (s, a, j) is row a, column j of sample s.
    auto write_output = [&](int s, int a, int j, Acc z) {
      if (bias != nullptr) z += widen(bias[a * n + j]);
      y_tile[(static_cast<int64_t>(s) * m + a) * n + j] = narrow<T>(activate<A>(z));
    };
    __syncthreads();  // the previous tile's products are done with x_s and intermediate_s
    stage(x + first * p * q, samples * p * q, x_aligned, x_s);
    __syncthreads();
    if (plan.right_product_first) {
      // T_i = X_i Vᵀ (p×n) for all samples at once: rows (i of sample s) stacked, stored [s][i][j].
      tile_product<kLong, kShortTile>(
          samples * p, n, q, single_matrix<Acc>(x_s, q, 1), single_matrix<Acc>(v_transposed_s, 1, n),
          [&](int row, int j, Acc value) { intermediate_s[row * n + j] = value; });
      __syncthreads();
      // Z_i = U T_i: columns (j of sample s) stacked.
      tile_product<kShortTile, kLong>(
          m, samples * n, p, single_matrix<Acc>(u_s, p, 1), per_sample_matrices<Acc>(intermediate_s, n, p * n, 1, n),
          [&](int a, int column, Acc z) { write_output(column / n, a, column % n, z); });
    } else {
      // W_i = U X_i (m×q): columns (k of sample s) stacked, stored [s][a][k].
      tile_product<kShortTile, kLong>(
          m, samples * q, p, single_matrix<Acc>(u_s, p, 1), per_sample_matrices<Acc>(x_s, q, p * q, 1, q),
          [&](int a, int column, Acc value) { intermediate_s[(column / q) * m * q + a * q + column % q] = value; });
      __syncthreads();
      // Z_i = W_i Vᵀ: rows (a of sample s) stacked.
      tile_product<kLong, kShortTile>(
          samples * m, n, q, single_matrix<Acc>(intermediate_s, q, 1), single_matrix<Acc>(v_transposed_s, 1, n),
          [&](int row, int j, Acc z) { write_output(row / m, row % m, j, z); });
    }
  }
}

template <typename T, typename F>
cudaError_t with_forward_kernel(Activation activation, F&& f) {
  cudaError_t status = cudaSuccess;
  dispatch_activation(activation, [&](auto a) { status = f(fused_forward_kernel<decltype(a)::value, T>); });
  return status;
}

}  // namespace

template <typename T>
cudaError_t plan_fused_forward(const BilinearShape& shape, bool right_product_first, Activation activation,
                               FusedPlan* plan) {
  *plan = FusedPlan{};
  plan->shape = shape;
  plan->right_product_first = right_product_first;
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const int m = shape.m, n = shape.n, p = shape.p, q = shape.q;
  auto bytes_of = [&](int samples) { return forward_layout(shape, samples, right_product_first).total * sizeof(Acc); };
  auto time_of = [&](int samples) {
    return right_product_first
               ? product_time(samples * p, n, q, kLong, kShortTile) + product_time(m, samples * n, p, kShortTile, kLong)
               : product_time(m, samples * q, p, kShortTile, kLong) + product_time(samples * m, n, q, kLong, kShortTile);
  };
  auto resident = [&](std::size_t shared_bytes, int* blocks) {
    return with_forward_kernel<T>(activation, [&](auto kernel) {
      return resident_blocks(kernel, kThreads, shared_bytes, blocks);
    });
  };
  return plan_tiles(bytes_of, time_of, resident, plan);
}

template <typename T>
cudaError_t launch_fused_forward(const FusedPlan& plan, const T* x, const T* u, const T* v, const T* bias, T* y,
                                 Activation activation, cudaStream_t stream) {
  const BilinearShape& shape = plan.shape;
  const bool x_aligned = aligned_for_vector_loads(x, sizeof(T) * shape.p * shape.q);
  return with_forward_kernel<T>(activation, [&](auto kernel) {
    return launch_kernel(kernel, plan.blocks, kThreads, plan.shared_bytes, stream, x, u, v, bias, y, plan, x_aligned);
  });
}

#define MATNET_INSTANTIATE(T)                                                                                  \
  template cudaError_t plan_fused_forward<T>(const BilinearShape&, bool, Activation, FusedPlan*);             \
  template cudaError_t launch_fused_forward<T>(const FusedPlan&, const T*, const T*, const T*, const T*, T*, \
                                               Activation, cudaStream_t);
MATNET_INSTANTIATE(float)
MATNET_INSTANTIATE(double)
MATNET_INSTANTIATE(__half)
MATNET_INSTANTIATE(__nv_bfloat16)
#undef MATNET_INSTANTIATE

}  // namespace matnet::cuda
