// The bilinear layer's forward and backward on blocks of L samples held side by side in vector
// lanes (lane_kernels.h), for D ≥ 1 inputs, and the threading around them. Included once by each
// bilinear_lanes_<isa>.cpp, inside that ISA's target pragma and namespace; see lane_kernels.h.

#include "lane_kernels.h"

namespace matnet::cpu::MATNET_CPU_CAPABILITY {
namespace {

#include "../activation_loops.h"

// Blocks per task of the forward's parallel_for (../parallel.h): enough work to amortise a task,
// few enough to balance.
constexpr int64_t kBlocksPerTask = 4;

template <typename T>
int64_t number_of_blocks(int64_t batch) {
  return (batch + kLanes<T> - 1) / kLanes<T>;
}

// Samples of the block from sample `first`: L, fewer in the last block, none past the batch.
template <typename T>
int64_t samples_in_block(int64_t batch, int64_t first) {
  return std::clamp<int64_t>(batch - first, 0, kLanes<T>);
}

// A block's scratch: `vectors` lane vectors from `data`, sized by forward_scratch_vectors or
// backward_scratch_vectors (bilinear_lanes.h) and carved by hand in the block functions below.
// Where scratch checks are on (MATNET_CHECK_SCRATCH=1, which the test suite sets), every carving
// is checked against the size, so the two cannot drift apart unnoticed.
template <typename T>
struct Scratch {
  Lanes<T>* data;
  int64_t vectors;

  // The carving ends at `end`.
  void check_fits(const Lanes<T>* end) const {
    if (scratch_checks_enabled())
      TORCH_CHECK(end - data <= vectors, "matnet: a lane kernel carved ", end - data,
                  " lane vectors of scratch out of the ", vectors, " it was given");
  }
};

// Zeroes lanes [count, L) of `size` lane vectors: the padding samples of a partial block, whose
// intermediates need not be 0 (σ of the bias, or 0·inf = NaN with infinite weights), must add
// nothing to the sums over samples.
template <typename T>
void zero_padding_lanes(Lanes<T>* values, int64_t size, int64_t count) {
  if (count == kLanes<T>) return;
  for (int64_t k = 0; k < size; ++k)
    for (int64_t lane = count; lane < kLanes<T>; ++lane) values[k][lane] = T(0);
}

// Y_i = σ(Σ_j U_j X_i^j V_jᵀ + B) for the `count` samples from `first`.
template <typename T, typename S>
void forward_block(const ForwardProblem<T, S>& problem, int64_t first, int64_t count, const Scratch<T>& scratch,
                   Prefetcher& prefetch) {
  const int64_t m = problem.m, n = problem.n;
  Lanes<T>* zs = scratch.data;  // Z_i     (m, n)
  Lanes<T>* xs = zs + m * n;    // X_i^j   (p, q)
  for (size_t j = 0; j < problem.inputs.size(); ++j) {
    const BilinearInput<T, S>& in = problem.inputs[j];
    const int64_t p = in.p, q = in.q;
    Lanes<T>* middle = xs + p * q;  // X Vᵀ or U X
    scratch.check_fits(middle + std::max(p * n, m * q));
    samples_to_lanes<T>(in.x + first * p * q, p * q, count, p * q, xs);
    const bool add_to_z = j > 0;  // the first input writes Z, the others add to it
    if (right_product_first(m, n, p, q)) {
      // T_i = X_i Vᵀ, as T_iᵀ(k, r) = Σ_c V(k, c) X_i(r, c); stored (p, n).
      scalar_times_lanes<T>(false, n, p, q, in.v, {q, 1}, xs, {1, q}, middle, {1, n}, prefetch);
      // Z_i(a, k) (+)= Σ_r U(a, r) T_i(r, k).
      scalar_times_lanes<T>(add_to_z, m, n, p, in.u, {p, 1}, middle, {n, 1}, zs, {n, 1}, prefetch);
    } else {
      // W_i(a, c) = Σ_r U(a, r) X_i(r, c); stored (m, q).
      scalar_times_lanes<T>(false, m, q, p, in.u, {p, 1}, xs, {q, 1}, middle, {q, 1}, prefetch);
      // Z_i (+)= W_i Vᵀ, as Z_iᵀ(k, a) = Σ_c V(k, c) W_i(a, c).
      scalar_times_lanes<T>(add_to_z, n, m, q, in.v, {q, 1}, middle, {1, q}, zs, {1, n}, prefetch);
    }
  }
  if (problem.bias != nullptr)
    for (int64_t k = 0; k < m * n; ++k) zs[k] += problem.bias[k];
  activate_in_place(problem.activation, reinterpret_cast<T*>(zs), m * n * kLanes<T>);
  lanes_to_samples<T>(zs, count, m * n, problem.y + first * m * n);
}

// Per thread: lane-wise sums over samples of dU_j, dV_j (for every input, in order) and dB.
struct LaneSumLayout {
  std::vector<int64_t> u_offset, v_offset;
  int64_t bias_offset, size;
  template <typename T, typename S>
  explicit LaneSumLayout(const BackwardProblem<T, S>& problem) {
    int64_t at = 0;
    for (const auto& in : problem.inputs) {
      u_offset.push_back(at);
      at += problem.m * in.p;
      v_offset.push_back(at);
      at += problem.n * in.q;
    }
    bias_offset = at;
    size = at + problem.m * problem.n;
  }
};

// For the `count` samples from `first`, with Δ_i = G_i ⊙ σ'(Z_i) and for every input j
// (docs/design.md §2):  dX_i^j = U_jᵀ Δ_i V_j,  dU_j += Δ_i V_j X_i^jᵀ,  dV_j += Δ_iᵀ U_j X_i^j,  dB += Δ_i,
// through P_i = Δ_i V_j and R_i = U_jᵀ Δ_i:  dX_i^j = R_i V_j,  dU_j += P_i X_i^jᵀ,  dV_j += R_iᵀ X_i^j.
template <typename T, typename S>
void backward_block(const BackwardProblem<T, S>& problem, const LaneSumLayout& layout, int64_t first, int64_t count,
                    const Scratch<T>& scratch, Lanes<T>* sums, Prefetcher& prefetch) {
  const int64_t m = problem.m, n = problem.n;
  Lanes<T>* delta = scratch.data;  // G_i, then Δ_i  (m, n)
  Lanes<T>* ys = delta + m * n;  // Y_i            (m, n)
  Lanes<T>* xs = ys + m * n;     // X_i^j          (p, q)
  // Δ_i = G_i ⊙ σ'(Z_i). The padding lanes hold G = 0 and X = 0; Δ, P and R are zeroed there
  // too, so that whatever the weights hold, those lanes add exactly nothing to dU, dV and dB.
  samples_to_lanes<T>(problem.grad_y + first * problem.grad_y_sample_stride, problem.grad_y_sample_stride, count,
                   m * n, delta);
  if (problem.activation != Activation::Identity) {
    samples_to_lanes<T>(problem.y + first * m * n, m * n, count, m * n, ys);
    backpropagate_activation(problem.activation, reinterpret_cast<T*>(delta), reinterpret_cast<const T*>(ys),
                             m * n * kLanes<T>);
    zero_padding_lanes<T>(delta, m * n, count);
  }
  if (problem.grad_bias != nullptr) {
    Lanes<T>* sum_bias = sums + layout.bias_offset;
    for (int64_t k = 0; k < m * n; ++k) sum_bias[k] += delta[k];
  }
  for (size_t j = 0; j < problem.inputs.size(); ++j) {
    const BilinearInput<T, S>& in = problem.inputs[j];
    const InputGradients<T, S>& out = problem.grads[j];
    const int64_t p = in.p, q = in.q;
    Lanes<T>* ps = xs + p * q;   // P_i   (m, q)
    Lanes<T>* rs = ps + m * q;   // R_i   (p, n)
    Lanes<T>* dxs = rs + p * n;  // dX_i  (p, q)
    scratch.check_fits(dxs + p * q);
    if (out.u != nullptr || out.v != nullptr) samples_to_lanes<T>(in.x + first * p * q, p * q, count, p * q, xs);
    if (out.u != nullptr) {
      // P_i = Δ_i V, as P_iᵀ(c, a) = Σ_k V(k, c) Δ_i(a, k); stored (m, q).
      scalar_times_lanes<T>(false, q, m, n, in.v, {1, q}, delta, {1, n}, ps, {1, q}, prefetch);
      zero_padding_lanes<T>(ps, m * q, count);
      // dU(a, r) += Σ_c P_i(a, c) X_i(r, c).
      accumulate_lanes_times_lanes<T>(m, p, q, ps, {1, q}, xs, {1, q}, sums + layout.u_offset[j], {p, 1}, prefetch);
    }
    if (out.x != nullptr || out.v != nullptr) {
      // R_i(r, k) = Σ_a U(a, r) Δ_i(a, k); stored (p, n).
      scalar_times_lanes<T>(false, p, n, m, in.u, {1, p}, delta, {n, 1}, rs, {n, 1}, prefetch);
      zero_padding_lanes<T>(rs, p * n, count);
    }
    if (out.v != nullptr) {
      // dV(k, c) += Σ_r R_i(r, k) X_i(r, c).
      accumulate_lanes_times_lanes<T>(n, q, p, rs, {n, 1}, xs, {q, 1}, sums + layout.v_offset[j], {q, 1}, prefetch);
    }
    if (out.x != nullptr) {
      // dX_i = R_i V, as dX_iᵀ(c, r) = Σ_k V(k, c) R_i(r, k); stored (p, q).
      scalar_times_lanes<T>(false, q, p, n, in.v, {1, q}, rs, {1, n}, dxs, {1, q}, prefetch);
      lanes_to_samples<T>(dxs, count, p * q, out.x + first * p * q);
    }
  }
}

// Samples [first, first + count), count ≥ 1, of `size` scalars each, `sample_stride` apart from
// `base`, to be prefetched.
template <typename T>
void add_samples(Prefetcher& prefetch, const T* base, int64_t sample_stride, int64_t first, int64_t count,
                 int64_t size) {
  prefetch.add(base + first * sample_stride, ((count - 1) * sample_stride + size) * int64_t(sizeof(T)));
}

// What the block from sample `first` reads from the batch: every input's X.
template <typename T, typename S>
void prefetch_forward_block(const ForwardProblem<T, S>& problem, int64_t first, Prefetcher& prefetch) {
  prefetch.clear();
  const int64_t count = samples_in_block<T>(problem.batch, first);
  if (count == 0) return;
  for (const BilinearInput<T, S>& in : problem.inputs) add_samples(prefetch, in.x, in.p * in.q, first, count, in.p * in.q);
}

// What the backward of the block from sample `first` reads from the batch: G, Y, every input's X.
template <typename T, typename S>
void prefetch_backward_block(const BackwardProblem<T, S>& problem, int64_t first, Prefetcher& prefetch) {
  prefetch.clear();
  const int64_t count = samples_in_block<T>(problem.batch, first);
  if (count == 0) return;
  const int64_t mn = problem.m * problem.n;
  add_samples(prefetch, problem.grad_y, problem.grad_y_sample_stride, first, count, mn);
  if (problem.activation != Activation::Identity) add_samples(prefetch, problem.y, mn, first, count, mn);
  for (size_t j = 0; j < problem.inputs.size(); ++j) {
    const InputGradients<T, S>& out = problem.grads[j];
    const BilinearInput<T, S>& in = problem.inputs[j];
    if (out.u != nullptr || out.v != nullptr) add_samples(prefetch, in.x, in.p * in.q, first, count, in.p * in.q);
  }
}

template <typename T, typename S>
void forward(const ForwardProblem<T, S>& problem) {
  const int64_t scratch_size = forward_scratch_vectors(problem) * kLanes<T>;
  parallel_for(0, number_of_blocks<T>(problem.batch), kBlocksPerTask, [&](int64_t first, int64_t last) {
    std::vector<T> scratch(scratch_size);
    Prefetcher prefetch;
    for (int64_t block = first; block < last; ++block) {
      const int64_t sample = block * kLanes<T>;
      prefetch_forward_block(problem, sample + kLanes<T>, prefetch);
      forward_block(problem, sample, samples_in_block<T>(problem.batch, sample),
                    {reinterpret_cast<Lanes<T>*>(scratch.data()), scratch_size / kLanes<T>}, prefetch);
    }
  });
}

// The blocks are cut into slots of consecutive blocks (bilinear_lanes.h). Each slot's samples are
// summed lane by lane in a thread's accumulators, whose lanes are then added in order into the
// slot's scalar sums; the slots are added in order at the end. Neither step depends on which
// thread ran which slot, so the sums are the same bits for any number of threads.
template <typename T, typename S>
void backward(const BackwardProblem<T, S>& problem) {
  const LaneSumLayout layout(problem);
  const int64_t blocks = number_of_blocks<T>(problem.batch);
  const int64_t slots = std::clamp<int64_t>(blocks / kMinBlocksPerSlot, 1, kSumSlots);
  const int64_t scratch_size = backward_scratch_vectors(problem) * kLanes<T>;
  std::vector<T> slot_sums(slots * layout.size);
  parallel_for(0, slots, 1, [&](int64_t first_slot, int64_t last_slot) {
    std::vector<T> scratch(scratch_size), lane_sums(layout.size * kLanes<T>);
    Lanes<T>* sums = reinterpret_cast<Lanes<T>*>(lane_sums.data());
    Prefetcher prefetch;
    for (int64_t slot = first_slot; slot < last_slot; ++slot) {
      std::fill(lane_sums.begin(), lane_sums.end(), T(0));
      for (int64_t block = slot * blocks / slots; block < (slot + 1) * blocks / slots; ++block) {
        const int64_t sample = block * kLanes<T>;
        prefetch_backward_block(problem, sample + kLanes<T>, prefetch);
        backward_block(problem, layout, sample, samples_in_block<T>(problem.batch, sample),
                       {reinterpret_cast<Lanes<T>*>(scratch.data()), scratch_size / kLanes<T>}, sums, prefetch);
      }
      T* slot_sum = slot_sums.data() + slot * layout.size;
      for (int64_t k = 0; k < layout.size; ++k) {
        T total = T(0);
        for (int64_t lane = 0; lane < kLanes<T>; ++lane) total += sums[k][lane];
        slot_sum[k] = total;
      }
    }
  });
  // out[k] = Σ_slots slot_sum[k], slot by slot.
  const auto reduce_into = [&](T* out, int64_t offset, int64_t size) {
    if (out == nullptr) return;
    std::fill(out, out + size, T(0));
    for (int64_t slot = 0; slot < slots; ++slot) {
      const T* slot_sum = slot_sums.data() + slot * layout.size + offset;
      for (int64_t k = 0; k < size; ++k) out[k] += slot_sum[k];
    }
  };
  for (size_t j = 0; j < problem.inputs.size(); ++j) {
    reduce_into(problem.grads[j].u, layout.u_offset[j], problem.m * problem.inputs[j].p);
    reduce_into(problem.grads[j].v, layout.v_offset[j], problem.n * problem.inputs[j].q);
  }
  reduce_into(problem.grad_bias, layout.bias_offset, problem.m * problem.n);
}

}  // namespace

const LaneKernels lane_kernels = {Isa::kVectorBytes,
                                  &forward<float, float>,
                                  &forward<double, double>,
                                  &forward<float, c10::BFloat16>,
                                  &forward<float, c10::Half>,
                                  &backward<float, float>,
                                  &backward<double, double>,
                                  &backward<float, c10::BFloat16>,
                                  &backward<float, c10::Half>};

}  // namespace matnet::cpu::MATNET_CPU_CAPABILITY
