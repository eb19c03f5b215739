// Fused forward of the operator family, Y_i = σ(Σ_j U_j X_i^j V_jᵀ + B), one kernel for all D
// inputs (docs/design.md §2, §7.3).
//
// A persistent thread block stages every U_j and V_jᵀ in shared memory once, then walks tiles of S
// samples. For each input j it stages the tile's X_i^j, forms the first product for all S samples at
// once, then the second, adding it to the running sum Z_i kept in shared memory; the last input's
// product is added in registers, with the bias and σ, and each Y_i written once. Every X^j is read
// once and Y written once, so the kernel moves the minimum number of bytes; all arithmetic is in the
// accumulation type (float32 for 16-bit inputs), and Y is rounded once, when it is written.
#include "accumulate_type.cuh"
#include "bilinear_kernels.h"
#include "block_products.cuh"
#include "kernel_launch.cuh"
#include "tile_staging.cuh"

namespace matnet::cuda {
namespace {

template <Activation A, typename T>
__global__ void __launch_bounds__(kThreads, kResidentBlocks)
    fused_forward_kernel(const FusedOperands<T> operands, T* __restrict__ y, FusedPlan plan, unsigned x_aligned) {
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const FusedShape& shape = plan.shape;
  const int m = shape.m, n = shape.n, inputs = shape.inputs, tile_samples = plan.samples_per_tile;
  const ForwardLayout layout = forward_layout(shape, tile_samples);
  Acc* shared = reinterpret_cast<Acc*>(dynamic_shared_memory());
  Acc* x_s = shared + layout.x;                        // X_i^j (p_j×q_j) of the tile's samples
  Acc* intermediate_s = shared + layout.intermediate;  // T_i = X_i^j V_jᵀ or W_i = U_j X_i^j
  Acc* z_s = shared + layout.z;                        // Σ of the inputs so far, stored [s][a][c] (D > 1)
  for (int j = 0; j < inputs; ++j) {
    stage(operands.u[j], m * shape.p[j], false, shared + layout.u[j]);                  // U_j (m×p_j), row-major
    stage_transposed(operands.v[j], n, shape.q[j], shared + layout.v_transposed[j]);  // V_jᵀ (q_j×n), row-major
  }
  const T* bias = operands.bias;

  const int64_t tiles = (shape.batch + tile_samples - 1) / tile_samples;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t first = tile * tile_samples;
    const int samples = static_cast<int>(shape.batch - first < tile_samples ? shape.batch - first : tile_samples);
    T* y_tile = y + first * m * n;
    for (int j = 0; j < inputs; ++j) {
      const int p = shape.p[j], q = shape.q[j];
      const Acc* u_s = shared + layout.u[j];
      const Acc* v_transposed_s = shared + layout.v_transposed[j];
      // Input j's product P (s, a, c) (row a, column c of sample s): the first input starts Z, the
      // others add to it, and the last one adds the bias, applies σ and writes Y. Each entry is
      // owned by one thread per product, and barriers separate the inputs.
      auto accumulate = [&](int s, int a, int c, Acc product) {
        const int entry = (s * m + a) * n + c;
        const Acc z = j == 0 ? product : z_s[entry] + product;
        if (j + 1 < inputs) {
          z_s[entry] = z;
        } else {
          const Acc biased = bias != nullptr ? z + widen(bias[a * n + c]) : z;
          y_tile[static_cast<int64_t>(s) * m * n + a * n + c] = narrow<T>(activate<A>(biased));
        }
      };
      __syncthreads();  // the previous products are done with x_s and intermediate_s
      stage(operands.x[j] + first * p * q, samples * p * q, (x_aligned >> j) & 1u, x_s);
      __syncthreads();
      if (shape.right_product_first[j]) {
        // T_i = X_i Vᵀ (p×n) for all samples at once: rows (r of sample s) stacked, stored [s][r][c].
        tile_product<kLong, kShortTile>(
            samples * p, n, q, single_matrix<Acc>(x_s, q, 1), single_matrix<Acc>(v_transposed_s, 1, n),
            [&](int row, int c, Acc value) { intermediate_s[row * n + c] = value; });
        __syncthreads();
        // U T_i: columns (c of sample s) stacked.
        tile_product<kShortTile, kLong>(
            m, samples * n, p, single_matrix<Acc>(u_s, p, 1), per_sample_matrices<Acc>(intermediate_s, n, p * n, 1, n),
            [&](int a, int column, Acc value) { accumulate(column / n, a, column % n, value); });
      } else {
        // W_i = U X_i (m×q): columns (k of sample s) stacked, stored [s][a][k].
        tile_product<kShortTile, kLong>(
            m, samples * q, p, single_matrix<Acc>(u_s, p, 1), per_sample_matrices<Acc>(x_s, q, p * q, 1, q),
            [&](int a, int column, Acc value) { intermediate_s[(column / q) * m * q + a * q + column % q] = value; });
        __syncthreads();
        // W_i Vᵀ: rows (a of sample s) stacked.
        tile_product<kLong, kShortTile>(
            samples * m, n, q, single_matrix<Acc>(intermediate_s, q, 1), single_matrix<Acc>(v_transposed_s, 1, n),
            [&](int row, int c, Acc value) { accumulate(row / m, row % m, c, value); });
      }
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
cudaError_t plan_fused_forward(const FusedShape& shape, Activation activation, FusedPlan* plan) {
  *plan = FusedPlan{};
  plan->shape = shape;
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const int m = shape.m, n = shape.n;
  auto bytes_of = [&](int samples) { return forward_layout(shape, samples).total * sizeof(Acc); };
  auto time_of = [&](int samples) {
    double time = 0;
    for (int j = 0; j < shape.inputs; ++j) {
      const int p = shape.p[j], q = shape.q[j];
      time += shape.right_product_first[j]
                  ? product_time(samples * p, n, q, kLong, kShortTile) + product_time(m, samples * n, p, kShortTile, kLong)
                  : product_time(m, samples * q, p, kShortTile, kLong) + product_time(samples * m, n, q, kLong, kShortTile);
    }
    return time;
  };
  auto resident = [&](std::size_t shared_bytes, int* blocks) {
    return with_forward_kernel<T>(activation, [&](auto kernel) {
      return resident_blocks(kernel, kThreads, shared_bytes, blocks);
    });
  };
  return plan_tiles(bytes_of, time_of, resident, plan);
}

template <typename T>
cudaError_t launch_fused_forward(const FusedPlan& plan, const FusedOperands<T>& operands, T* y, Activation activation,
                                 cudaStream_t stream) {
  const FusedShape& shape = plan.shape;
  unsigned x_aligned = 0;  // bit j: X_j can be read in 16-byte vectors
  for (int j = 0; j < shape.inputs; ++j)
    x_aligned |= unsigned{aligned_for_vector_loads(operands.x[j], sizeof(T) * shape.p[j] * shape.q[j])} << j;
  return with_forward_kernel<T>(activation, [&](auto kernel) {
    return launch_kernel(kernel, plan.blocks, kThreads, plan.shared_bytes, stream, operands, y, plan, x_aligned);
  });
}

#define MATNET_INSTANTIATE(T)                                                                              \
  template cudaError_t plan_fused_forward<T>(const FusedShape&, Activation, FusedPlan*);                  \
  template cudaError_t launch_fused_forward<T>(const FusedPlan&, const FusedOperands<T>&, T*, Activation, \
                                               cudaStream_t);
MATNET_INSTANTIATE(float)
MATNET_INSTANTIATE(double)
MATNET_INSTANTIATE(__half)
MATNET_INSTANTIATE(__nv_bfloat16)
#undef MATNET_INSTANTIATE

}  // namespace matnet::cuda
