// The element-wise ends of the fused CPU kernels, run on cache-resident blocks. Each is compiled
// for AVX-512, AVX2 and baseline x86-64 and picked at load time (GCC/Clang target_clones), so the
// extension runs on any x86-64 CPU and still vectorises σ on the ones we benchmark.
#pragma once

#include <cstdint>

#include "../activation.h"

namespace matnet::cpu {

// y[i, a, j] = σ(z[a, i, j] + bias[a, j]) for a block of `count` samples; z is laid out
// (m, count, n) as the block GEMMs produce it, y is the (count, m, n) output. bias may be null.
void bias_activation_forward(Activation activation, const float* z, const float* bias, float* y,
                             int64_t count, int64_t m, int64_t n);
void bias_activation_forward(Activation activation, const double* z, const double* bias, double* y,
                             int64_t count, int64_t m, int64_t n);

// delta[a, i, j] = grad_y[i, a, j] · σ'(y[i, a, j]) (σ' written through y), laid out (m, count, n)
// for the block GEMMs; and, when grad_bias is not null, grad_bias[a, j] += Σ_i delta[a, i, j].
void activation_backward(Activation activation, const float* grad_y, const float* y, float* delta,
                         float* grad_bias, int64_t count, int64_t m, int64_t n);
void activation_backward(Activation activation, const double* grad_y, const double* y, double* delta,
                         double* grad_bias, int64_t count, int64_t m, int64_t n);

}  // namespace matnet::cpu
