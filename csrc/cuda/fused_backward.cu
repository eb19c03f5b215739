// Fused backward of the bilinear layer (design.md §1, §7), from the saved X and Y only:
//
//     Δ_i = G_i ⊙ σ'(Y_i)         formed while staging G_i and Y_i, never written to global memory
//     S_i = Δ_i V                 (m×q), shared by dX and dU
//     dX_i = Uᵀ S_i               written once
//     dU  = Σ_i S_i X_iᵀ
//     W_i = U X_i                 (m×q), in S_i's place once dX and dU are done
//     dV  = Σ_i Δ_iᵀ W_i
//     dB  = Σ_i Δ_i
//
// A persistent block walks tiles of samples and keeps its running sums of dU, dV and dB in shared
// memory; each block writes its partial sums once, and a second kernel adds the blocks' partial
// sums in block order. No atomics: the same inputs on the same device give bit-identical
// gradients. All arithmetic is in the accumulation type, rounded once when a gradient is written.
#include "accumulate_type.cuh"
#include "bilinear_kernels.h"
#include "block_products.cuh"
#include "kernel_launch.cuh"
#include "tile_staging.cuh"

namespace matnet::cuda {
namespace {

template <Activation A, typename T>
__global__ void __launch_bounds__(kThreads, kResidentBlocks)
    fused_backward_kernel(const T* __restrict__ grad_y, const T* __restrict__ x, const T* __restrict__ u,
                          const T* __restrict__ v, const T* __restrict__ y, T* __restrict__ grad_x,
                          AccumulateType<T>* __restrict__ partial_sums, FusedPlan plan, bool x_aligned,
                          bool y_aligned) {
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const BilinearShape shape = plan.shape;
  const GradientMask mask = plan.mask;
  const int m = shape.m, n = shape.n, p = shape.p, q = shape.q, tile_samples = plan.samples_per_tile;
  const int splits_u = sample_splits(m, p, tile_samples), splits_v = sample_splits(n, q, tile_samples);
  const BackwardLayout layout = backward_layout(shape, mask, tile_samples);
  Acc* shared = reinterpret_cast<Acc*>(dynamic_shared_memory());
  Acc* u_s = shared + layout.u;        // U (m×p), row-major
  Acc* v_s = shared + layout.v;        // V (n×q), row-major
  Acc* x_s = shared + layout.x;        // X_i (p×q) of the tile's samples
  Acc* delta_s = shared + layout.delta;  // Δ_i (m×n)
  Acc* intermediate_s = shared + layout.intermediate;  // S_i, then W_i (m×q), stored [s][a][k]
  Acc* sum_u = shared + layout.sum_u;
  Acc* sum_v = shared + layout.sum_v;
  Acc* sum_bias = shared + layout.sum_bias;
  stage(u, m * p, false, u_s);
  stage(v, n * q, false, v_s);
  for (int e = threadIdx.x; e < layout.total - layout.sum_u; e += blockDim.x) sum_u[e] = 0;

  const int64_t tiles = (shape.batch + tile_samples - 1) / tile_samples;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t first = tile * tile_samples;
    const int samples = static_cast<int>(shape.batch - first < tile_samples ? shape.batch - first : tile_samples);
    __syncthreads();  // the previous tile's products are done with the staged tile
    if (mask.u || mask.v) stage(x + first * p * q, samples * p * q, x_aligned, x_s);
    const T* const grad_and_output[2] = {grad_y + first * m * n, y + first * m * n};
    transform_to_shared(
        grad_and_output, samples * m * n, y_aligned,
        [](const T (&gy)[2]) { return activation_backward<A>(widen(gy[0]), widen(gy[1])); }, delta_s);
    __syncthreads();

    if (mask.x || mask.u) {
      // S_i = Δ_i V: rows (a of sample s) stacked.
      tile_product<kLong, kShortTile>(samples * m, q, n, single_matrix<Acc>(delta_s, n, 1),
                                      single_matrix<Acc>(v_s, 1, q),
                                      [&](int row, int k, Acc value) { intermediate_s[row * q + k] = value; });
      __syncthreads();
      if (mask.x) {
        // dX_i = Uᵀ S_i: columns (k of sample s) stacked.
        T* grad_x_tile = grad_x + first * p * q;
        tile_product<kShortTile, kLong>(
            p, samples * q, m, single_matrix<Acc>(u_s, 1, p), per_sample_matrices<Acc>(intermediate_s, q, m * q, 1, q),
            [&](int i, int column, Acc value) {
              grad_x_tile[(static_cast<int64_t>(column / q) * p + i) * q + column % q] = narrow<T>(value);
            });
      }
      if (mask.u) {
        // dU += Σ_i S_i X_iᵀ: dU(a, i) = Σ_k S_i(a, k) X_i(i, k).
        sample_sum_product<kShortTile, kShortTile>(m, p, q, samples, splits_u,
                                                   per_sample_matrices<Acc>(intermediate_s, m, m * q, q, 1),
                                                   per_sample_matrices<Acc>(x_s, p, p * q, q, 1), sum_u);
      }
      __syncthreads();  // S_i is no longer needed: W_i takes its place
    }
    if (mask.v) {
      // W_i = U X_i: columns (k of sample s) stacked, stored [s][a][k].
      tile_product<kShortTile, kLong>(
          m, samples * q, p, single_matrix<Acc>(u_s, p, 1), per_sample_matrices<Acc>(x_s, q, p * q, 1, q),
          [&](int a, int column, Acc value) { intermediate_s[(column / q) * m * q + a * q + column % q] = value; });
      __syncthreads();
      // dV += Σ_i Δ_iᵀ W_i: dV(j, k) = Σ_a Δ_i(a, j) W_i(a, k).
      sample_sum_product<kShortTile, kShortTile>(n, q, m, samples, splits_v,
                                                 per_sample_matrices<Acc>(delta_s, n, m * n, 1, n),
                                                 per_sample_matrices<Acc>(intermediate_s, q, m * q, 1, q), sum_v);
    }
    if (mask.bias) {
      // dB += Σ_i Δ_i, each entry summed by one thread over the samples in order.
      for (int e = threadIdx.x; e < m * n; e += blockDim.x) {
        Acc total = sum_bias[e];
        for (int s = 0; s < samples; ++s) total += delta_s[s * m * n + e];
        sum_bias[e] = total;
      }
    }
  }
  __syncthreads();
  Acc* block_sums = partial_sums + static_cast<int64_t>(blockIdx.x) * partial_sums_per_block(shape);
  if (mask.u) sum_splits(sum_u, splits_u, m * p, block_sums);
  if (mask.v) sum_splits(sum_v, splits_v, n * q, block_sums + m * p);
  if (mask.bias) sum_splits(sum_bias, 1, m * n, block_sums + m * p + n * q);
}

// out[e] = Σ_{b < blocks} partial_sums[b · stride + e] in block order, rounded once.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sum_block_partials_kernel(const AccumulateType<T>* __restrict__ partial_sums, int stride, int count, int blocks,
                              T* __restrict__ out) {
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < count; e += blockDim.x * gridDim.x) {
    AccumulateType<T> total = 0;
    for (int b = 0; b < blocks; ++b) total += partial_sums[static_cast<int64_t>(b) * stride + e];
    out[e] = narrow<T>(total);
  }
}

template <typename T, typename F>
cudaError_t with_backward_kernel(Activation activation, F&& f) {
  cudaError_t status = cudaSuccess;
  dispatch_activation(activation, [&](auto a) { status = f(fused_backward_kernel<decltype(a)::value, T>); });
  return status;
}

}  // namespace

template <typename T>
cudaError_t plan_fused_backward(const BilinearShape& shape, GradientMask mask, Activation activation,
                                FusedPlan* plan) {
  *plan = FusedPlan{};
  plan->shape = shape;
  plan->mask = mask;
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const int m = shape.m, n = shape.n, p = shape.p, q = shape.q;
  auto bytes_of = [&](int samples) { return backward_layout(shape, mask, samples).total * sizeof(Acc); };
  auto time_of = [&](int samples) {
    const int splits_u = sample_splits(m, p, samples), splits_v = sample_splits(n, q, samples);
    double time = 0;
    if (mask.x || mask.u) time += product_time(samples * m, q, n, kLong, kShortTile);
    if (mask.x) time += product_time(p, samples * q, m, kShortTile, kLong);
    if (mask.u) time += product_time(m, p * splits_u, q, kShortTile, kShortTile, ceil_div(samples, splits_u));
    if (mask.v) {
      time += product_time(m, samples * q, p, kShortTile, kLong);
      time += product_time(n, q * splits_v, m, kShortTile, kShortTile, ceil_div(samples, splits_v));
    }
    return time;
  };
  auto resident = [&](std::size_t shared_bytes, int* blocks) {
    return with_backward_kernel<T>(activation, [&](auto kernel) {
      return resident_blocks(kernel, kThreads, shared_bytes, blocks);
    });
  };
  const cudaError_t status = plan_tiles(bytes_of, time_of, resident, plan);
  plan->workspace_bytes = static_cast<std::size_t>(plan->blocks) * partial_sums_per_block(shape) * sizeof(Acc);
  return status;
}

template <typename T>
cudaError_t launch_fused_backward(const FusedPlan& plan, const T* grad_y, const T* x, const T* u, const T* v,
                                  const T* y, T* grad_x, T* grad_u, T* grad_v, T* grad_bias, void* workspace,
                                  Activation activation, cudaStream_t stream) {
  using Acc = AccumulateType<T>;
  const BilinearShape& shape = plan.shape;
  const int m = shape.m, n = shape.n, p = shape.p, q = shape.q;
  Acc* partial_sums = static_cast<Acc*>(workspace);
  const bool x_aligned = aligned_for_vector_loads(x, sizeof(T) * p * q);
  const bool y_aligned =
      aligned_for_vector_loads(y, sizeof(T) * m * n) && aligned_for_vector_loads(grad_y, sizeof(T) * m * n);
  cudaError_t status = with_backward_kernel<T>(activation, [&](auto kernel) {
    return launch_kernel(kernel, plan.blocks, kThreads, plan.shared_bytes, stream, grad_y, x, u, v, y, grad_x,
                         partial_sums, plan, x_aligned, y_aligned);
  });
  // dU, dV, dB: the blocks' partial sums added in block order.
  const int stride = partial_sums_per_block(shape);
  const struct {
    bool wanted;
    int offset, count;
    T* out;
  } sums[] = {{plan.mask.u, 0, m * p, grad_u}, {plan.mask.v, m * p, n * q, grad_v},
              {plan.mask.bias, m * p + n * q, m * n, grad_bias}};
  for (const auto& sum : sums) {
    if (status != cudaSuccess || !sum.wanted) continue;
    status = launch_kernel(sum_block_partials_kernel<T>, ceil_div(sum.count, kThreads), kThreads, 0, stream,
                           partial_sums + sum.offset, stride, sum.count, plan.blocks, sum.out);
  }
  return status;
}

#define MATNET_INSTANTIATE(T)                                                                                      \
  template cudaError_t plan_fused_backward<T>(const BilinearShape&, GradientMask, Activation, FusedPlan*);        \
  template cudaError_t launch_fused_backward<T>(const FusedPlan&, const T*, const T*, const T*, const T*, const T*, \
                                                T*, T*, T*, T*, void*, Activation, cudaStream_t);
MATNET_INSTANTIATE(float)
MATNET_INSTANTIATE(double)
MATNET_INSTANTIATE(__half)
MATNET_INSTANTIATE(__nv_bfloat16)
#undef MATNET_INSTANTIATE

}  // namespace matnet::cuda
