#include "bilinear_paths.h"

#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include <type_traits>

#include "amx/bilinear_amx.h"
#include "capability.h"

namespace matnet::cpu {
namespace {

// Scratch a thread may hold for one block of samples (and, backward, its lane-wise sums). Beyond
// it the block no longer stays in L2, and memory would grow with L copies of a large matrix
// instead of with the batch: such problems take the GEMM path.
constexpr int64_t kLaneScratchBytes = int64_t{4} << 20;

template <typename T, typename S = T>
std::vector<BilinearInput<T, S>> lane_inputs(const std::vector<InputTensors>& inputs) {
  std::vector<BilinearInput<T, S>> out;
  for (const InputTensors& in : inputs)
    out.push_back({in.x.const_data_ptr<S>(), in.u.const_data_ptr<T>(), in.v.const_data_ptr<T>(), in.x.size(1),
                   in.x.size(2)});
  return out;
}

template <typename T>
T* pointer_or_null(const at::Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

// The lane kernels' view of a call: per-sample matrices as S, weights, bias and sums as T.
template <typename T, typename S = T>
ForwardProblem<T, S> forward_problem(const std::vector<InputTensors>& inputs, const at::Tensor& bias,
                                     Activation activation, at::Tensor& y) {
  return {lane_inputs<T, S>(inputs), pointer_or_null<T>(bias), y.mutable_data_ptr<S>(), activation,
          y.size(0), y.size(1), y.size(2)};
}

template <typename T, typename S = T>
BackwardProblem<T, S> backward_problem(const at::Tensor& grad_y, const at::Tensor& y,
                                       const std::vector<InputTensors>& inputs, Activation activation,
                                       const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias) {
  BackwardProblem<T, S> problem{grad_y.const_data_ptr<S>(), grad_y.stride(0), y.const_data_ptr<S>(),
                                lane_inputs<T, S>(inputs), {}, pointer_or_null<T>(grad_bias), activation,
                                y.size(0), y.size(1), y.size(2)};
  for (const GradientTensors& grad : grads)
    problem.grads.push_back({pointer_or_null<S>(grad.x), pointer_or_null<T>(grad.u), pointer_or_null<T>(grad.v)});
  return problem;
}

template <typename T, typename S>
bool fits_lanes(const LaneKernels* lanes, const ForwardProblem<T, S>& problem) {
  return lanes != nullptr && forward_scratch_vectors(problem) * lanes->vector_bytes <= kLaneScratchBytes;
}

template <typename T, typename S>
bool fits_lanes(const LaneKernels* lanes, const BackwardProblem<T, S>& problem) {
  return lanes != nullptr &&
         (backward_scratch_vectors(problem) + sum_entries(problem)) * lanes->vector_bytes <= kLaneScratchBytes;
}

// bfloat16 and float16 (docs/design.md §7.1): float32 arithmetic, each output rounded
// once. The lane kernels read and write the per-sample matrices in 16 bits, widening and rounding
// them in registers; the weights, the bias and the sums over samples (dU, dV, dB) are float32 here
// (their size does not grow with the batch). The GEMM path runs on float32 copies of everything.
at::Tensor widened(const at::Tensor& t) { return t.defined() ? t.to(at::kFloat) : t; }

at::Tensor float32_like(const at::Tensor& t) {
  return t.defined() ? at::empty(t.sizes(), t.options().dtype(at::kFloat)) : t;
}

void round_into(const at::Tensor& out, const at::Tensor& result) {
  if (out.defined()) out.copy_(result);
}

std::vector<InputTensors> with_float32_weights(const std::vector<InputTensors>& inputs, bool samples_too) {
  std::vector<InputTensors> out;
  for (const InputTensors& in : inputs)
    out.push_back({samples_too ? widened(in.x) : in.x, widened(in.u), widened(in.v)});
  return out;
}

// The bfloat16 kernels on AMX tiles (variant `amx`, amx/bilinear_amx.h), where that variant is in
// use, the problem fits, and the tiles beat the lane kernels or those cannot take the problem;
// true if they ran.
template <template <typename, typename> class Problem, typename S>
bool ran_on_amx(const LaneKernels* lanes, const Problem<float, S>& problem) {
#ifdef MATNET_HAVE_AMX_KERNELS
  if constexpr (std::is_same_v<S, c10::BFloat16>) {
    if (cpu_capability() != CpuCapability::Amx || !amx::can_take(problem)) return false;
    if (!amx::pays_off(problem) && fits_lanes(lanes, problem)) return false;
    amx::run(problem);
    return true;
  }
#endif
  return false;
}

template <typename S>
void forward_16bit(const LaneKernels* lanes, const std::vector<InputTensors>& inputs, const at::Tensor& bias,
                   Activation activation, at::Tensor& y) {
  const at::Tensor bias32 = widened(bias);
  const std::vector<InputTensors> weights32 = with_float32_weights(inputs, false);  // alive while the kernels run
  const ForwardProblem<float, S> problem = forward_problem<float, S>(weights32, bias32, activation, y);
  if (ran_on_amx(lanes, problem)) return;
  if (fits_lanes(lanes, problem)) return lanes->forward(problem);
  at::Tensor y32 = float32_like(y);
  gemm_forward(with_float32_weights(inputs, true), bias32, activation, y32);
  y.copy_(y32);
}

template <typename S>
void backward_16bit(const LaneKernels* lanes, const at::Tensor& grad_y, const at::Tensor& y,
                    const std::vector<InputTensors>& inputs, Activation activation,
                    const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias) {
  std::vector<GradientTensors> grads32;  // dX as it is (a 16-bit sample), dU and dV in float32
  for (const GradientTensors& grad : grads) grads32.push_back({grad.x, float32_like(grad.u), float32_like(grad.v)});
  const at::Tensor grad_bias32 = float32_like(grad_bias);
  const std::vector<InputTensors> weights32 = with_float32_weights(inputs, false);  // alive while the kernels run
  const BackwardProblem<float, S> problem =
      backward_problem<float, S>(grad_y, y, weights32, activation, grads32, grad_bias32);
  if (ran_on_amx(lanes, problem)) {
    // done: dX rounded, dU, dV and dB in float32 as from the lane kernels
  } else if (fits_lanes(lanes, problem)) {
    lanes->backward(problem);
  } else {
    for (GradientTensors& grad : grads32) grad.x = float32_like(grad.x);
    gemm_backward(widened(grad_y), widened(y), with_float32_weights(inputs, true), activation, grads32, grad_bias32);
    for (size_t j = 0; j < grads.size(); ++j) round_into(grads[j].x, grads32[j].x);
  }
  for (size_t j = 0; j < grads.size(); ++j) {
    round_into(grads[j].u, grads32[j].u);
    round_into(grads[j].v, grads32[j].v);
  }
  round_into(grad_bias, grad_bias32);
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
  if (y.scalar_type() == at::kBFloat16 || y.scalar_type() == at::kHalf) {
    AT_DISPATCH_REDUCED_FLOATING_TYPES(y.scalar_type(), "matnet::bilinear",
                                       [&] { forward_16bit<scalar_t>(lanes, inputs, bias, activation, y); });
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "matnet::bilinear", [&] {
    const ForwardProblem<scalar_t> problem = forward_problem<scalar_t>(inputs, bias, activation, y);
    if (fits_lanes(lanes, problem)) {
      lanes->forward(problem);
    } else {
      gemm_forward(inputs, bias, activation, y);
    }
  });
}

void run_bilinear_backward(const at::Tensor& grad_y, const at::Tensor& y, const std::vector<InputTensors>& inputs,
                           Activation activation, const std::vector<GradientTensors>& grads, const at::Tensor& grad_bias) {
  const LaneKernels* lanes = lane_kernels();
  if (y.scalar_type() == at::kBFloat16 || y.scalar_type() == at::kHalf) {
    AT_DISPATCH_REDUCED_FLOATING_TYPES(y.scalar_type(), "matnet::bilinear_backward", [&] {
      backward_16bit<scalar_t>(lanes, grad_y, y, inputs, activation, grads, grad_bias);
    });
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "matnet::bilinear_backward", [&] {
    const BackwardProblem<scalar_t> problem = backward_problem<scalar_t>(grad_y, y, inputs, activation, grads, grad_bias);
    if (fits_lanes(lanes, problem)) {
      lanes->backward(problem);
    } else {
      gemm_backward(grad_y, y, inputs, activation, grads, grad_bias);
    }
  });
}

}  // namespace matnet::cpu
