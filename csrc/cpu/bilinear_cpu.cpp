// CPU kernels of matnet::bilinear and matnet::bilinear_backward (design.md §1, §7): the ATen side.
//
// The batch is cut into blocks of L samples (one vector of lanes, bilinear_blocks.h); runs of
// blocks go to threads, each with its own scratch (a few tens of KiB, so a block stays in L1/L2
// from input to output) and, in the backward, its own lane-wise sums of dU, dV and dB, which are
// reduced once at the end.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <vector>

#include "../bilinear_checks.h"
#include "bilinear_blocks.h"

namespace matnet::cpu {
namespace {

template <typename T>
int64_t number_of_blocks(int64_t batch) {
  return (batch + kBlockSamples<T> - 1) / kBlockSamples<T>;
}

// Blocks per task of at::parallel_for: enough work to amortise a task, few enough to balance.
constexpr int64_t kBlocksPerTask = 4;

template <typename T>
void forward_kernel(const ForwardProblem<T>& problem) {
  const int64_t scratch_size = forward_scratch_vectors(problem.sizes);
  at::parallel_for(0, number_of_blocks<T>(problem.sizes.batch), kBlocksPerTask, [&](int64_t first, int64_t last) {
    std::vector<Lanes<T>> scratch(scratch_size);
    forward_blocks(problem, first, last, scratch.data());
  });
}

// Per-thread lane-wise partial sums of a gradient that sums over samples.
template <typename T>
struct ThreadLaneSums {
  int64_t size;  // lane vectors per thread
  std::vector<Lanes<T>> partials;
  ThreadLaneSums(bool needed, int64_t size)
      : size(size), partials(needed ? at::get_num_threads() * size : 0, Lanes<T>{}) {}
  Lanes<T>* for_this_thread() { return partials.empty() ? nullptr : partials.data() + at::get_thread_num() * size; }
  // out[k] = Σ_threads Σ_lanes partial[k].
  void reduce_into(T* out) const {
    for (int64_t k = 0; k < size; ++k) {
      Lanes<T> total{};
      for (size_t thread_offset = 0; thread_offset < partials.size(); thread_offset += size)
        total += partials[thread_offset + k];
      out[k] = T(0);
      for (int64_t lane = 0; lane < kLanes<T>; ++lane) out[k] += total[lane];
    }
  }
};

template <typename T>
void backward_kernel(const BackwardProblem<T>& problem, T* grad_u, T* grad_v, T* grad_bias) {
  const auto& s = problem.sizes;
  const auto [need_x, need_u, need_v, need_bias] = problem.mask;
  ThreadLaneSums<T> sum_u(need_u, s.m * s.p), sum_v(need_v, s.n * s.q), sum_bias(need_bias, s.m * s.n);
  const int64_t scratch_size = backward_scratch_vectors(s);
  at::parallel_for(0, number_of_blocks<T>(s.batch), kBlocksPerTask, [&](int64_t first, int64_t last) {
    std::vector<Lanes<T>> scratch(scratch_size);
    const LaneSums<T> sums{sum_u.for_this_thread(), sum_v.for_this_thread(), sum_bias.for_this_thread()};
    backward_blocks(problem, first, last, scratch.data(), sums);
  });
  if (need_u) sum_u.reduce_into(grad_u);
  if (need_v) sum_v.reduce_into(grad_v);
  if (need_bias) sum_bias.reduce_into(grad_bias);
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
    forward_kernel<scalar_t>({x_c.const_data_ptr<scalar_t>(), u_c.const_data_ptr<scalar_t>(),
                              v_c.const_data_ptr<scalar_t>(),
                              bias_c.defined() ? bias_c.const_data_ptr<scalar_t>() : nullptr,
                              y.mutable_data_ptr<scalar_t>(), parsed, sizes});
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
    backward_kernel<scalar_t>({g_c.const_data_ptr<scalar_t>(), x_c.const_data_ptr<scalar_t>(),
                               u_c.const_data_ptr<scalar_t>(), v_c.const_data_ptr<scalar_t>(),
                               y_c.const_data_ptr<scalar_t>(), parsed, sizes, mask, out(grad_x)},
                              out(grad_u), out(grad_v), out(grad_bias));
  });
  return {grad_x, grad_u, grad_v, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CPU, m) {
  m.impl("bilinear", &bilinear_cpu);
  m.impl("bilinear_backward", &bilinear_backward_cpu);
}

}  // namespace matnet::cpu
