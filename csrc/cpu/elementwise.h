// The element-wise ends of the fused CPU kernels, run on cache-resident blocks. Each is compiled
// for AVX-512, AVX2 and baseline x86-64 and picked at load time (GCC/Clang target_clones), so the
// extension runs on any x86-64 CPU and still vectorises σ on the ones we benchmark.
#pragma once

#include <cstdint>

#include "../activation.h"

namespace matnet::cpu {

// y[i, a, j] = σ(z[i·stride_sample + a·stride_row + j·stride_col] + bias[a, j]) for a block of
// `count` samples: z is the block GEMMs' result in whatever layout they produce, y the (count, m, n)
// output; bias may be null. The bias is added while z is gathered into y, then σ runs over y as one
// contiguous stretch, so the vector loop has no short rows (and no scalar remainders) in it.
struct BlockLayout {
  int64_t stride_sample, stride_row, stride_col;
};
void bias_activation_forward(Activation activation, const float* z, BlockLayout layout, const float* bias,
                             float* y, int64_t count, int64_t m, int64_t n);
void bias_activation_forward(Activation activation, const double* z, BlockLayout layout, const double* bias,
                             double* y, int64_t count, int64_t m, int64_t n);

// delta[a, i, j] = grad_y[i, a, j] · σ'(y[i, a, j]) (σ' written through y), laid out (m, count, n)
// for the block GEMMs; when delta_transposed is not null it also gets the (m, n, count) layout
// delta_transposed[a, j, i]; when grad_bias is not null, grad_bias[a, j] += Σ_i delta[a, i, j].
void activation_backward(Activation activation, const float* grad_y, const float* y, float* delta,
                         float* delta_transposed, float* grad_bias, int64_t count, int64_t m, int64_t n);
void activation_backward(Activation activation, const double* grad_y, const double* y, double* delta,
                         double* delta_transposed, double* grad_bias, int64_t count, int64_t m, int64_t n);

}  // namespace matnet::cpu
