// Fused backward of the operator family (docs/design.md §2, §7.3), from the saved X^j and Y only, for
// all D inputs in one kernel:
//
//     Δ_i = G_i ⊙ σ'(Y_i)         formed while staging G_i and Y_i, never written to global memory
//     per input j:
//       S_i = Δ_i V_j             (m×q_j), shared by dX_j and dU_j
//       dX_i^j = U_jᵀ S_i         written once
//       dU_j  += S_i X_i^jᵀ
//       W_i = U_j X_i^j           (m×q_j), in S_i's place once dX_j and dU_j are done
//       dV_j  += Δ_iᵀ W_i
//     dB += Δ_i
//
// A persistent block walks tiles of samples and keeps its running sums of every dU_j, dV_j and dB
// in shared memory; each block writes its partial sums once, and a second kernel adds the blocks'
// partial sums in block order. No atomics: the same inputs on the same device give bit-identical
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
    fused_backward_kernel(const T* __restrict__ grad_y, const FusedOperands<T> operands, const T* __restrict__ y,
                          const FusedGradients<T> grads, AccumulateType<T>* __restrict__ partial_sums, FusedPlan plan,
                          unsigned x_aligned, bool y_aligned) {
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const FusedShape& shape = plan.shape;
  const GradientMask& mask = plan.mask;
  const int m = shape.m, n = shape.n, inputs = shape.inputs, tile_samples = plan.samples_per_tile;
  const BackwardLayout layout = backward_layout(shape, mask, tile_samples);
  Acc* shared = reinterpret_cast<Acc*>(dynamic_shared_memory());
  Acc* x_s = shared + layout.x;                        // X_i^j (p_j×q_j) of the tile's samples
  Acc* delta_s = shared + layout.delta;                // Δ_i (m×n)
  Acc* intermediate_s = shared + layout.intermediate;  // S_i, then W_i (m×q_j), stored [s][a][k]
  Acc* sum_bias = shared + layout.sum_bias;
  for (int j = 0; j < inputs; ++j) {
    stage(operands.u[j], m * shape.p[j], false, shared + layout.u[j]);  // U_j (m×p_j), row-major
    stage(operands.v[j], n * shape.q[j], false, shared + layout.v[j]);  // V_j (n×q_j), row-major
  }
  for (int e = layout.sum_u[0] + threadIdx.x; e < layout.total; e += blockDim.x) shared[e] = 0;

  const int64_t tiles = (shape.batch + tile_samples - 1) / tile_samples;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t first = tile * tile_samples;
    const int samples = static_cast<int>(shape.batch - first < tile_samples ? shape.batch - first : tile_samples);
    __syncthreads();  // the previous tile's products are done with Δ
    const T* const grad_and_output[2] = {grad_y + first * m * n, y + first * m * n};
    transform_to_shared(
        grad_and_output, samples * m * n, y_aligned,
        [](const T (&gy)[2]) { return activation_backward<A>(widen(gy[0]), widen(gy[1])); }, delta_s);

    for (int j = 0; j < inputs; ++j) {
      const int p = shape.p[j], q = shape.q[j];
      const Acc* u_s = shared + layout.u[j];
      const Acc* v_s = shared + layout.v[j];
      __syncthreads();  // Δ is staged; the previous input's products are done with x_s and intermediate_s
      if (mask.u[j] || mask.v[j]) stage(operands.x[j] + first * p * q, samples * p * q, (x_aligned >> j) & 1u, x_s);
      __syncthreads();
      if (mask.x[j] || mask.u[j]) {
        // S_i = Δ_i V_j: rows (a of sample s) stacked.
        tile_product<kLong, kShortTile>(samples * m, q, n, single_matrix<Acc>(delta_s, n, 1),
                                        single_matrix<Acc>(v_s, 1, q),
                                        [&](int row, int k, Acc value) { intermediate_s[row * q + k] = value; });
        __syncthreads();
        if (mask.x[j]) {
          // dX_i^j = U_jᵀ S_i: columns (k of sample s) stacked.
          T* grad_x_tile = grads.x[j] + first * p * q;
          tile_product<kShortTile, kLong>(
              p, samples * q, m, single_matrix<Acc>(u_s, 1, p), per_sample_matrices<Acc>(intermediate_s, q, m * q, 1, q),
              [&](int r, int column, Acc value) {
                grad_x_tile[(static_cast<int64_t>(column / q) * p + r) * q + column % q] = narrow<T>(value);
              });
        }
        if (mask.u[j]) {
          // dU_j += Σ_i S_i X_iᵀ: dU_j(a, r) = Σ_k S_i(a, k) X_i(r, k).
          sample_sum_product<kShortTile, kShortTile>(m, p, q, samples, sample_splits(m, p, tile_samples),
                                                     per_sample_matrices<Acc>(intermediate_s, m, m * q, q, 1),
                                                     per_sample_matrices<Acc>(x_s, p, p * q, q, 1),
                                                     shared + layout.sum_u[j]);
        }
        __syncthreads();  // S_i is no longer needed: W_i takes its place
      }
      if (mask.v[j]) {
        // W_i = U_j X_i: columns (k of sample s) stacked, stored [s][a][k].
        tile_product<kShortTile, kLong>(
            m, samples * q, p, single_matrix<Acc>(u_s, p, 1), per_sample_matrices<Acc>(x_s, q, p * q, 1, q),
            [&](int a, int column, Acc value) { intermediate_s[(column / q) * m * q + a * q + column % q] = value; });
        __syncthreads();
        // dV_j += Σ_i Δ_iᵀ W_i: dV_j(c, k) = Σ_a Δ_i(a, c) W_i(a, k).
        sample_sum_product<kShortTile, kShortTile>(n, q, m, samples, sample_splits(n, q, tile_samples),
                                                   per_sample_matrices<Acc>(delta_s, n, m * n, 1, n),
                                                   per_sample_matrices<Acc>(intermediate_s, q, m * q, 1, q),
                                                   shared + layout.sum_v[j]);
      }
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
  const PartialSumsLayout sums = partial_sums_layout(shape);
  Acc* block_sums = partial_sums + static_cast<int64_t>(blockIdx.x) * sums.per_block;
  for (int j = 0; j < inputs; ++j) {
    const int p = shape.p[j], q = shape.q[j];
    if (mask.u[j]) sum_splits(shared + layout.sum_u[j], sample_splits(m, p, tile_samples), m * p, block_sums + sums.u[j]);
    if (mask.v[j]) sum_splits(shared + layout.sum_v[j], sample_splits(n, q, tile_samples), n * q, block_sums + sums.v[j]);
  }
  if (mask.bias) sum_splits(sum_bias, 1, m * n, block_sums + sums.bias);
}

// The sums over blocks of one call: segment k adds entries [offset[k], offset[k] + count[k]) of
// every block's partial sums into out[k]. Up to every dU_j, dV_j and dB in one launch.
template <typename T>
struct BlockSumSegments {
  int segments;
  int offset[2 * kMaxFusedInputs + 1], count[2 * kMaxFusedInputs + 1];
  T* out[2 * kMaxFusedInputs + 1];
};

// out[e] = Σ_{b < blocks} partial_sums[b · stride + offset + e] in block order, rounded once; the
// threads walk the segments' entries one after another.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sum_block_partials_kernel(const AccumulateType<T>* __restrict__ partial_sums, int stride, int blocks,
                              const BlockSumSegments<T> segments, int total) {
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < total; e += blockDim.x * gridDim.x) {
    int segment = 0, entry = e;
    while (entry >= segments.count[segment]) entry -= segments.count[segment++];
    AccumulateType<T> sum = 0;
    for (int b = 0; b < blocks; ++b) sum += partial_sums[static_cast<int64_t>(b) * stride + segments.offset[segment] + entry];
    segments.out[segment][entry] = narrow<T>(sum);
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
cudaError_t plan_fused_backward(const FusedShape& shape, const GradientMask& mask, Activation activation,
                                FusedPlan* plan) {
  *plan = FusedPlan{};
  plan->shape = shape;
  plan->mask = mask;
  using Acc = AccumulateType<T>;
  constexpr int kLong = kLongTile<Acc>;
  const int m = shape.m, n = shape.n;
  auto bytes_of = [&](int samples) { return backward_layout(shape, mask, samples).total * sizeof(Acc); };
  auto time_of = [&](int samples) {
    double time = 0;
    for (int j = 0; j < shape.inputs; ++j) {
      const int p = shape.p[j], q = shape.q[j];
      const int splits_u = sample_splits(m, p, samples), splits_v = sample_splits(n, q, samples);
      if (mask.x[j] || mask.u[j]) time += product_time(samples * m, q, n, kLong, kShortTile);
      if (mask.x[j]) time += product_time(p, samples * q, m, kShortTile, kLong);
      if (mask.u[j]) time += product_time(m, p * splits_u, q, kShortTile, kShortTile, ceil_div(samples, splits_u));
      if (mask.v[j]) {
        time += product_time(m, samples * q, p, kShortTile, kLong);
        time += product_time(n, q * splits_v, m, kShortTile, kShortTile, ceil_div(samples, splits_v));
      }
    }
    return time;
  };
  auto resident = [&](std::size_t shared_bytes, int* blocks) {
    return with_backward_kernel<T>(activation, [&](auto kernel) {
      return resident_blocks(kernel, kThreads, shared_bytes, blocks);
    });
  };
  const cudaError_t status = plan_tiles(bytes_of, time_of, resident, plan);
  plan->workspace_bytes = static_cast<std::size_t>(plan->blocks) * partial_sums_layout(shape).per_block * sizeof(Acc);
  return status;
}

template <typename T>
cudaError_t launch_fused_backward(const FusedPlan& plan, const T* grad_y, const FusedOperands<T>& operands, const T* y,
                                  const FusedGradients<T>& grads, void* workspace, Activation activation,
                                  cudaStream_t stream) {
  using Acc = AccumulateType<T>;
  const FusedShape& shape = plan.shape;
  const GradientMask& mask = plan.mask;
  const int m = shape.m, n = shape.n;
  Acc* partial_sums = static_cast<Acc*>(workspace);
  unsigned x_aligned = 0;  // bit j: X_j can be read in 16-byte vectors
  for (int j = 0; j < shape.inputs; ++j)
    x_aligned |= unsigned{aligned_for_vector_loads(operands.x[j], sizeof(T) * shape.p[j] * shape.q[j])} << j;
  const bool y_aligned =
      aligned_for_vector_loads(y, sizeof(T) * m * n) && aligned_for_vector_loads(grad_y, sizeof(T) * m * n);
  cudaError_t status = with_backward_kernel<T>(activation, [&](auto kernel) {
    return launch_kernel(kernel, plan.blocks, kThreads, plan.shared_bytes, stream, grad_y, operands, y, grads,
                         partial_sums, plan, x_aligned, y_aligned);
  });
  // Every wanted dU_j, dV_j and dB: the blocks' partial sums added in block order, in one launch.
  const PartialSumsLayout sums = partial_sums_layout(shape);
  BlockSumSegments<T> segments{};
  int total = 0;
  auto add = [&](bool wanted, int offset, int count, T* out) {
    if (!wanted) return;
    segments.offset[segments.segments] = offset;
    segments.count[segments.segments] = count;
    segments.out[segments.segments++] = out;
    total += count;
  };
  for (int j = 0; j < shape.inputs; ++j) add(mask.u[j], sums.u[j], m * shape.p[j], grads.u[j]);
  for (int j = 0; j < shape.inputs; ++j) add(mask.v[j], sums.v[j], n * shape.q[j], grads.v[j]);
  add(mask.bias, sums.bias, m * n, grads.bias);
  if (status != cudaSuccess || total == 0) return status;
  return launch_kernel(sum_block_partials_kernel<T>, ceil_div(total, kThreads), kThreads, 0, stream, partial_sums,
                       sums.per_block, plan.blocks, segments, total);
}

#define MATNET_INSTANTIATE(T)                                                                                  \
  template cudaError_t plan_fused_backward<T>(const FusedShape&, const GradientMask&, Activation, FusedPlan*); \
  template cudaError_t launch_fused_backward<T>(const FusedPlan&, const T*, const FusedOperands<T>&, const T*, \
                                                const FusedGradients<T>&, void*, Activation, cudaStream_t);
MATNET_INSTANTIATE(float)
MATNET_INSTANTIATE(double)
MATNET_INSTANTIATE(__half)
MATNET_INSTANTIATE(__nv_bfloat16)
#undef MATNET_INSTANTIATE

}  // namespace matnet::cuda
