// Runs the fused CUDA kernels' launchers (plan, forward, backward) under the CPU emulation of
// emulated_runtime.h, for tests/test_cuda_kernels_emulated.py:
//
//   run_fused_bilinear DTYPE ACTIVATION BATCH M N P Q BIAS MASK RIGHT_FIRST MULTIPROCESSORS IN OUT
//
// DTYPE float32|float64|float16|bfloat16; ACTIVATION 0 identity, 1 sigmoid, 2 tanh, 3 relu;
// BIAS 0|1; MASK four 0|1 digits for dX, dU, dV, dB; RIGHT_FIRST 0|1 the forward's product order.
// IN holds x, u, v, [bias], grad_y as raw values of DTYPE, contiguous, in that order. OUT gets y
// and the gradients the mask asks for, in the order dX, dU, dV, dB. Prints the plans; with IN "-",
// only prints them (the emulated device: an H100's shared memory, MULTIPROCESSORS).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
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

template <typename T>
int run(char** argv) {
  const auto activation = static_cast<matnet::Activation>(std::atoi(argv[2]));
  const BilinearShape shape{std::atoll(argv[3]), std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6]),
                            std::atoi(argv[7])};
  const bool has_bias = std::atoi(argv[8]) != 0;
  const std::string mask_digits = argv[9];
  const GradientMask mask{mask_digits[0] == '1', mask_digits[1] == '1', mask_digits[2] == '1', mask_digits[3] == '1'};
  const bool right_first = std::atoi(argv[10]) != 0;
  emulation::limits.multiprocessors = std::atoi(argv[11]);
  const int64_t batch = shape.batch, m = shape.m, n = shape.n, p = shape.p, q = shape.q;

  FusedPlan forward_plan;
  check(plan_fused_forward<T>(shape, right_first, activation, &forward_plan), "plan_fused_forward");
  print_plan("forward", forward_plan);
  FusedPlan backward_plan;
  check(plan_fused_backward<T>(shape, mask, activation, &backward_plan), "plan_fused_backward");
  print_plan("backward", backward_plan);
  if (std::string(argv[12]) == "-") return 0;
  if (!forward_plan.supported || !backward_plan.supported) return 2;

  std::ifstream in(argv[12], std::ios::binary);
  auto read = [&](int64_t count) {
    std::vector<T> values(count);
    in.read(reinterpret_cast<char*>(values.data()), count * sizeof(T));
    return values;
  };
  const std::vector<T> x = read(batch * p * q), u = read(m * p), v = read(n * q),
                       bias = has_bias ? read(m * n) : std::vector<T>(), grad_y = read(batch * m * n);
  if (!in) {
    std::cerr << "input file too short" << std::endl;
    return 1;
  }

  std::vector<T> y(batch * m * n), grad_x(batch * p * q), grad_u(m * p), grad_v(n * q), grad_bias(m * n);
  check(launch_fused_forward<T>(forward_plan, x.data(), u.data(), v.data(), has_bias ? bias.data() : nullptr,
                                y.data(), activation, nullptr),
        "launch_fused_forward");
  std::vector<unsigned char> workspace(backward_plan.workspace_bytes);
  check(launch_fused_backward<T>(backward_plan, grad_y.data(), x.data(), u.data(), v.data(), y.data(), grad_x.data(),
                                 grad_u.data(), grad_v.data(), grad_bias.data(), workspace.data(), activation,
                                 nullptr),
        "launch_fused_backward");

  std::ofstream out(argv[13], std::ios::binary);
  auto write = [&](const std::vector<T>& values) {
    out.write(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  };
  write(y);
  const std::vector<T>* grads[] = {&grad_x, &grad_u, &grad_v, &grad_bias};
  const bool wanted[] = {mask.x, mask.u, mask.v, mask.bias};
  for (int k = 0; k < 4; ++k) {
    if (wanted[k]) write(*grads[k]);
  }
  return out ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 14) {
    std::cerr << "usage: run_fused_bilinear DTYPE ACTIVATION BATCH M N P Q BIAS MASK RIGHT_FIRST MULTIPROCESSORS IN OUT"
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
