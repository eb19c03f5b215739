#include "bilinear_paths.h"

#include <ATen/Dispatch.h>

#include "capability.h"

namespace matnet::cpu {
namespace {

// Scratch a thread may hold for one block of samples (and, backward, its lane-wise sums). Beyond
// it the block no longer stays in L2, and memory would grow with L copies of a large matrix
// instead of with the batch: such problems take the GEMM path.
constexpr int64_t kLaneScratchBytes = int64_t{4} << 20;

template <typename T>
std::vector<BilinearInput<T>> lane_inputs(const std::vector<InputTensors>& inputs) {
  std::vector<BilinearInput<T>> out;
  for (const InputTensors& in : inputs)
    out.push_back({in.x.const_data_ptr<T>(), in.u.const_data_ptr<T>(), in.v.const_data_ptr<T>(), in.x.size(1),
                   in.x.size(2)});
  return out;
}

template <typename T>
T* pointer_or_null(const at::Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

}  // namespace

at::Tensor gradient_samples(const at::Tensor& grad_y, int64_t batch, int64_t m, int64_t n) {
  bool broadcast = batch > 1;
  for (int64_t d = 0; d + 2 < grad_y.dim(); ++d) broadcast &= grad_y.size(d) == 1 || grad_y.stride(d) == 0;
  if (!broadcast) return grad_y.contiguous().view({batch, m, n});
  at::Tensor sample = grad_y;
  while (sample.dim() > 2) sample = sample.select(0, 0);
  return sample.contiguous().expand({batch, m, n});
}

void run_bilinear_forward(const std::vector<InputTensors>& inputs, const at::Tensor& bias, Activation activation,
                          at::Tensor& y) {
  const LaneKernels* lanes = lane_kernels();
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "matnet::bilinear", [&] {
    const ForwardProblem<scalar_t> problem{lane_inputs<scalar_t>(inputs), pointer_or_null<scalar_t>(bias),
                                           y.mutable_data_ptr<scalar_t>(), activation, y.size(0), y.size(1),
                                           y.size(2)};
    if (lanes != nullptr && forward_scratch_vectors(problem) * lanes->vector_bytes <= kLaneScratchBytes) {
      lanes->forward(problem);
    } else {
      gemm_forward(inputs, bias, activation, y);
    }
  });
}

void run_bilinear_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                           Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias) {
  const LaneKernels* lanes = lane_kernels();
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "matnet::bilinear_backward", [&] {
    BackwardProblem<scalar_t> problem{grad_y.const_data_ptr<scalar_t>(),
                                      grad_y.stride(0),
                                      y.const_data_ptr<scalar_t>(),
                                      lane_inputs<scalar_t>(inputs),
                                      {},
                                      pointer_or_null<scalar_t>(grad_bias),
                                      activation,
                                      y.size(0),
                                      y.size(1),
                                      y.size(2)};
    for (const GradientTensors& grad : grads)
      problem.grads.push_back(
          {pointer_or_null<scalar_t>(grad.x), pointer_or_null<scalar_t>(grad.u), pointer_or_null<scalar_t>(grad.v)});
    const int64_t scratch = backward_scratch_vectors(problem) + sum_entries(problem);
    if (lanes != nullptr && scratch * lanes->vector_bytes <= kLaneScratchBytes) {
      lanes->backward(problem);
    } else {
      gemm_backward(grad_y, y, inputs, activation, grads, grad_bias);
    }
  });
}

}  // namespace matnet::cpu
