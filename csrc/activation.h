// Activations of the bilinear layer and their derivatives, written once for CPU and CUDA code.
//
// Depends on nothing but <cmath>, so the raw CUDA kernels (compiled by plain nvcc, without
// ATen) and the CPU kernels share the same definitions and cannot drift.
#pragma once

#include <cmath>
#include <type_traits>

#if defined(__CUDACC__)
#define MATNET_HOST_DEVICE __host__ __device__
#else
#define MATNET_HOST_DEVICE
#endif

namespace matnet {

enum class Activation : int { Identity = 0, Sigmoid = 1, Tanh = 2, Relu = 3 };

// e^z for float on the host as a polynomial that compilers vectorise (std::exp is a library call
// they do not): z = k ln2 + r with |r| <= ln2/2, e^r by Cephes' degree-6 polynomial (about 2 ulp),
// 2^k assembled in the exponent bits. z is clamped to [-87, 88] so 2^k stays a normal float; the
// sigmoid and tanh built on it saturate there anyway.
MATNET_HOST_DEVICE inline float exp_polynomial(float z) {
  z = z < -87.0f ? -87.0f : (z > 88.0f ? 88.0f : z);
  const float t = z * 1.44269504088896341f;
  const int k = static_cast<int>(t + (t >= 0.0f ? 0.5f : -0.5f));
  const float r = z - static_cast<float>(k) * 0.693359375f + static_cast<float>(k) * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r * r + r + 1.0f;
  const int bits = (k + 127) << 23;
  float two_to_k;
  __builtin_memcpy(&two_to_k, &bits, sizeof(float));
  return e_r * two_to_k;
}

// tanh z. On the host for float: 1 − 2/(e^{2z} + 1), which saturates to ±1 without overflow, but
// cancels near 0, where the odd Taylor series to z⁹ is used instead (relative error < 1e-7 for
// |z| < 1/4). Both sides are computed and blended, so the loop still vectorises.
template <typename T>
MATNET_HOST_DEVICE inline T hyperbolic_tangent(T z) {
#if defined(__CUDA_ARCH__)
  return tanh(z);
#else
  if constexpr (std::is_same_v<T, float>) {
    const float z2 = z * z;
    const float series =
        z * (1.0f + z2 * (-1.0f / 3 + z2 * (2.0f / 15 + z2 * (-17.0f / 315 + z2 * (62.0f / 2835)))));
    const float formula = 1.0f - 2.0f / (exp_polynomial(2.0f * z) + 1.0f);
    // An arithmetic blend, not `cond ? series : formula`, which GCC turns into a branch.
    const float use_series = z2 < 0.0625f ? 1.0f : 0.0f;
    return use_series * series + (1.0f - use_series) * formula;
  } else {
    return std::tanh(z);
  }
#endif
}

template <typename T>
MATNET_HOST_DEVICE inline T exponential(T z) {
#if defined(__CUDA_ARCH__)
  return exp(z);
#else
  if constexpr (std::is_same_v<T, float>) {
    return exp_polynomial(z);
  } else {
    return std::exp(z);
  }
#endif
}

// σ(z).
template <Activation A, typename T>
MATNET_HOST_DEVICE inline T activate(T z) {
  if constexpr (A == Activation::Sigmoid) {
    return T(1) / (T(1) + exponential(-z));
  } else if constexpr (A == Activation::Tanh) {
    return hyperbolic_tangent(z);
  } else if constexpr (A == Activation::Relu) {
    return z > T(0) ? z : T(0);
  } else {
    return z;
  }
}

// σ'(z) written through the output y = σ(z), so the pre-activation need not be saved:
// sigmoid y(1−y) · tanh 1−y² · relu [y>0] · identity 1.
template <Activation A, typename T>
MATNET_HOST_DEVICE inline T activation_derivative_from_output(T y) {
  if constexpr (A == Activation::Sigmoid) {
    return y * (T(1) - y);
  } else if constexpr (A == Activation::Tanh) {
    return T(1) - y * y;
  } else if constexpr (A == Activation::Relu) {
    return y > T(0) ? T(1) : T(0);
  } else {
    return T(1);
  }
}

// Calls f(std::integral_constant<Activation, A>{}) for the runtime value `activation`, so kernels
// are instantiated once per activation and the element loops carry no branch on it.
template <typename F>
MATNET_HOST_DEVICE inline void dispatch_activation(Activation activation, F&& f) {
  switch (activation) {
    case Activation::Sigmoid:
      f(std::integral_constant<Activation, Activation::Sigmoid>{});
      break;
    case Activation::Tanh:
      f(std::integral_constant<Activation, Activation::Tanh>{});
      break;
    case Activation::Relu:
      f(std::integral_constant<Activation, Activation::Relu>{});
      break;
    default:
      f(std::integral_constant<Activation, Activation::Identity>{});
      break;
  }
}

}  // namespace matnet
