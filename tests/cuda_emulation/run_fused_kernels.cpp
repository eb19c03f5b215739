// Runs the fused CUDA kernels' launchers (plan, forward, backward) under the CPU emulation of
// emulated_runtime.h, for tests/test_cuda_kernels_emulated.py:
//
//   run_fused_kernels DTYPE ACTIVATION BATCH M N INPUTS BIAS MASK MULTIPROCESSORS IN OUT
//
// DTYPE float32|float64|float16|bfloat16; ACTIVATION 0 identity, 1 sigmoid, 2 tanh, 3 relu;
// INPUTS the D inputs' sizes and forward product orders, comma-separated, each PxQ followed by r
// (U (X Vᵀ)) or l ((U X) Vᵀ), e.g. 28x28r,14x14l; BIAS 0|1; MASK 3·D + 1 digits 0|1 for
// dX_0 … dX_{D−1}, dU_0 …, dV_0 …, dB. IN holds xs…, us…, vs…, [bias], grad_y as raw contiguous
// values of DTYPE, in that order. OUT gets y and the gradients the mask asks for, in its order.
// Prints the plans; with IN "-", only prints them (the emulated device: an H100's shared memory,
// MULTIPROCESSORS).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bilinear_kernels.h"

namespace {

using namespace matnet::cuda;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::cerr << what << " failed with status " << static_cast<int>(status) << std::endl;
    std::exit(1);
  }
}

void print_plan(const char* name, const FusedPlan& plan) {
  std::cout << name << ": supported " << plan.supported << " samples_per_tile " << plan.samples_per_tile
            << " blocks " << plan.blocks << " shared_bytes " << plan.shared_bytes << std::endl;
}

FusedShape parse_shape(char** argv) {
  FusedShape shape{std::atoll(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]), 0, {}, {}, {}};
  std::stringstream inputs(argv[6]);
  std::string input;
  while (std::getline(inputs, input, ',') && shape.inputs < kMaxFusedInputs) {
    const int j = shape.inputs++;
    char separator = 0, order = 0;
    std::stringstream(input) >> shape.p[j] >> separator >> shape.q[j] >> order;
    shape.right_product_first[j] = order == 'r';
  }
  return shape;
}

template <typename T>
int run(char** argv) {
  const auto activation = static_cast<matnet::Activation>(std::atoi(argv[2]));
  const FusedShape shape = parse_shape(argv);
  const int inputs = shape.inputs;
  const bool has_bias = std::atoi(argv[7]) != 0;
  const std::string digits = argv[8];
  if (digits.size() != static_cast<size_t>(3 * inputs + 1)) {
    std::cerr << "MASK must have 3·D + 1 digits" << std::endl;
    return 1;
  }
  GradientMask mask{};
  for (int j = 0; j < inputs; ++j) {
    mask.x[j] = digits[j] == '1';
    mask.u[j] = digits[inputs + j] == '1';
    mask.v[j] = digits[2 * inputs + j] == '1';
  }
  mask.bias = digits[3 * inputs] == '1';
  emulation::limits.multiprocessors = std::atoi(argv[9]);
  const int64_t batch = shape.batch, m = shape.m, n = shape.n;

  FusedPlan forward_plan;
  check(plan_fused_forward<T>(shape, activation, &forward_plan), "plan_fused_forward");
  print_plan("forward", forward_plan);
  FusedPlan backward_plan;
  check(plan_fused_backward<T>(shape, mask, activation, &backward_plan), "plan_fused_backward");
  print_plan("backward", backward_plan);
  if (std::string(argv[10]) == "-") return 0;
  if (!forward_plan.supported || !backward_plan.supported) return 2;

  std::ifstream in(argv[10], std::ios::binary);
  auto read = [&](int64_t count) {
    std::vector<T> values(count);
    in.read(reinterpret_cast<char*>(values.data()), count * sizeof(T));
    return values;
  };
  // values[k]: the k-th matrix batch in the mask's order (xs…, us…, vs…), then dB's shape.
  std::vector<int64_t> sizes;
  for (int j = 0; j < inputs; ++j) sizes.push_back(batch * shape.p[j] * shape.q[j]);
  for (int j = 0; j < inputs; ++j) sizes.push_back(m * shape.p[j]);
  for (int j = 0; j < inputs; ++j) sizes.push_back(n * shape.q[j]);
  sizes.push_back(m * n);
  std::vector<std::vector<T>> operands;
  for (int k = 0; k < 3 * inputs; ++k) operands.push_back(read(sizes[k]));
  const std::vector<T> bias = has_bias ? read(m * n) : std::vector<T>(), grad_y = read(batch * m * n);
  if (!in) {
    std::cerr << "input file too short" << std::endl;
    return 1;
  }

  FusedOperands<T> pointers{};
  std::vector<std::vector<T>> grads;
  for (int64_t size : sizes) grads.emplace_back(size);
  FusedGradients<T> outputs{};
  for (int j = 0; j < inputs; ++j) {
    pointers.x[j] = operands[j].data();
    pointers.u[j] = operands[inputs + j].data();
    pointers.v[j] = operands[2 * inputs + j].data();
    outputs.x[j] = grads[j].data();
    outputs.u[j] = grads[inputs + j].data();
    outputs.v[j] = grads[2 * inputs + j].data();
  }
  pointers.bias = has_bias ? bias.data() : nullptr;
  outputs.bias = grads[3 * inputs].data();
  std::vector<T> y(batch * m * n);
  check(launch_fused_forward<T>(forward_plan, pointers, y.data(), activation, nullptr), "launch_fused_forward");
  std::vector<unsigned char> workspace(backward_plan.workspace_bytes);
  check(launch_fused_backward<T>(backward_plan, grad_y.data(), pointers, y.data(), outputs, workspace.data(),
                                 activation, nullptr),
        "launch_fused_backward");

  std::ofstream out(argv[11], std::ios::binary);
  auto write = [&](const std::vector<T>& values) {
    out.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  };
  write(y);
  for (size_t k = 0; k < grads.size(); ++k)
    if (digits[k] == '1') write(grads[k]);
  return out ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 12) {
    std::cerr << "usage: run_fused_kernels DTYPE ACTIVATION BATCH M N INPUTS BIAS MASK MULTIPROCESSORS IN OUT"
              << std::endl;
    return 1;
  }
  const std::string dtype = argv[1];
  if (dtype == "float32") return run<float>(argv);
  if (dtype == "float64") return run<double>(argv);
  if (dtype == "float16") return run<__half>(argv);
  if (dtype == "bfloat16") return run<__nv_bfloat16>(argv);
  std::cerr << "unknown dtype " << dtype << std::endl;
  return 1;
}
