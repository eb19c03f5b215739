#include "elementwise.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MATNET_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MATNET_VECTOR_CLONES
#endif

#define MATNET_ALWAYS_INLINE inline __attribute__((always_inline))

namespace matnet::cpu {
namespace {

template <Activation A, typename T>
MATNET_ALWAYS_INLINE void bias_activation_forward_impl(const T* z, BlockLayout layout, const T* bias, T* y,
                                                       int64_t count, int64_t m, int64_t n) {
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t a = 0; a < m; ++a) {
      const T* z_row = z + i * layout.stride_sample + a * layout.stride_row;
      T* y_row = y + (i * m + a) * n;
      for (int64_t j = 0; j < n; ++j)
        y_row[j] = z_row[j * layout.stride_col] + (bias != nullptr ? bias[a * n + j] : T(0));
    }
  }
  if constexpr (A != Activation::Identity) {
    const int64_t size = count * m * n;
    for (int64_t k = 0; k < size; ++k) y[k] = activate<A>(y[k]);
  }
}

template <Activation A, typename T>
MATNET_ALWAYS_INLINE void activation_backward_impl(const T* grad_y, const T* y, T* delta, T* delta_transposed,
                                                   T* grad_bias, int64_t count, int64_t m, int64_t n) {
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t a = 0; a < m; ++a) {
      const T* g_row = grad_y + (i * m + a) * n;
      const T* y_row = y + (i * m + a) * n;
      T* d_row = delta + (a * count + i) * n;
      for (int64_t j = 0; j < n; ++j) d_row[j] = g_row[j] * activation_derivative_from_output<A>(y_row[j]);
      if (delta_transposed != nullptr) {
        T* dt_column = delta_transposed + a * n * count + i;
        for (int64_t j = 0; j < n; ++j) dt_column[j * count] = d_row[j];
      }
      if (grad_bias != nullptr) {
        T* gb_row = grad_bias + a * n;
        for (int64_t j = 0; j < n; ++j) gb_row[j] += d_row[j];
      }
    }
  }
}

// A switch rather than dispatch_activation: a lambda would be a separate function compiled for the
// baseline target, and its loops would miss the clone's vector instructions.
template <typename T>
MATNET_ALWAYS_INLINE void bias_activation_forward_any(Activation activation, const T* z, BlockLayout layout,
                                                      const T* bias, T* y, int64_t count, int64_t m, int64_t n) {
  switch (activation) {
    case Activation::Sigmoid:
      return bias_activation_forward_impl<Activation::Sigmoid>(z, layout, bias, y, count, m, n);
    case Activation::Tanh:
      return bias_activation_forward_impl<Activation::Tanh>(z, layout, bias, y, count, m, n);
    case Activation::Relu:
      return bias_activation_forward_impl<Activation::Relu>(z, layout, bias, y, count, m, n);
    case Activation::Identity:
      return bias_activation_forward_impl<Activation::Identity>(z, layout, bias, y, count, m, n);
  }
}

template <typename T>
MATNET_ALWAYS_INLINE void activation_backward_any(Activation activation, const T* grad_y, const T* y, T* delta,
                                                  T* delta_transposed, T* grad_bias, int64_t count, int64_t m,
                                                  int64_t n) {
  switch (activation) {
    case Activation::Sigmoid:
      return activation_backward_impl<Activation::Sigmoid>(grad_y, y, delta, delta_transposed, grad_bias, count, m, n);
    case Activation::Tanh:
      return activation_backward_impl<Activation::Tanh>(grad_y, y, delta, delta_transposed, grad_bias, count, m, n);
    case Activation::Relu:
      return activation_backward_impl<Activation::Relu>(grad_y, y, delta, delta_transposed, grad_bias, count, m, n);
    case Activation::Identity:
      return activation_backward_impl<Activation::Identity>(grad_y, y, delta, delta_transposed, grad_bias, count, m, n);
  }
}

}  // namespace

MATNET_VECTOR_CLONES void bias_activation_forward(Activation activation, const float* z, BlockLayout layout,
                                                  const float* bias,
                                                  float* y, int64_t count, int64_t m, int64_t n) {
  bias_activation_forward_any(activation, z, layout, bias, y, count, m, n);
}

MATNET_VECTOR_CLONES void bias_activation_forward(Activation activation, const double* z, BlockLayout layout,
                                                  const double* bias,
                                                  double* y, int64_t count, int64_t m, int64_t n) {
  bias_activation_forward_any(activation, z, layout, bias, y, count, m, n);
}

MATNET_VECTOR_CLONES void activation_backward(Activation activation, const float* grad_y, const float* y,
                                              float* delta, float* delta_transposed, float* grad_bias, int64_t count,
                                              int64_t m, int64_t n) {
  activation_backward_any(activation, grad_y, y, delta, delta_transposed, grad_bias, count, m, n);
}

MATNET_VECTOR_CLONES void activation_backward(Activation activation, const double* grad_y, const double* y,
                                              double* delta, double* delta_transposed, double* grad_bias, int64_t count,
                                              int64_t m, int64_t n) {
  activation_backward_any(activation, grad_y, y, delta, delta_transposed, grad_bias, count, m, n);
}

}  // namespace matnet::cpu
