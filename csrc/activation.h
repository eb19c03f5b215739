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
// 2^k assembled in the exponent bits of two factors 2^⌊k/2⌋ · 2^(k−⌊k/2⌋), each a normal float, so
// that the product underflows gradually to the subnormals and 0 (z < −87.3) and overflows to +inf
// (z > 88.72) exactly as e^z does in float. z is clamped to [−104, 89] (e^z is 0 and +inf beyond).
// NaN stays NaN: it reaches the result through r (k is read from bits, never converted from a NaN).
MATNET_HOST_DEVICE inline float exp_polynomial(float z) {
  // Each clamp keeps z when it is NaN, in the operand order of the SSE max and min instructions.
  // GCC 12 still vectorises the pair as compares and blends, not max/min (checked in the AVX2
  // object); a max/min version was faster for σ alone but not measurably for a layer (docs/cpu_kernels.md).
  z = -104.0f > z ? -104.0f : z;
  z = 89.0f < z ? 89.0f : z;
  const float t = z * 1.44269504088896341f;
  // k = t rounded to the nearest integer: adding and subtracting 1.5·2²³ leaves no fraction bits
  // for |t| < 2²². No branch and no conversion per sign, so it costs two additions in a vector.
  // (Only under IEEE arithmetic, as setup.py builds: -ffast-math would fold the pair to t.)
  // k as an integer from the same sum's bits: t + 1.5·2²³ lies in [2²³, 2²⁴), where a float's
  // mantissa bits count whole units, so its bits minus those of 1.5·2²³ are k, here modulo 2³²
  // (unsigned). All integer work below is unsigned, so it is defined for every t: for NaN the bits
  // are some integer and the NaN reaches the result through r. No select on NaN either: GCC 12
  // duplicates the whole polynomial for one.
  const float shifted = t + 12582912.0f;
  const float k_float = shifted - 12582912.0f;  // in [−150, 128]
  unsigned shifted_bits;
  __builtin_memcpy(&shifted_bits, &shifted, sizeof(float));
  const unsigned k = shifted_bits - 0x4B400000u;
  const float r = z - k_float * 0.693359375f + k_float * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r * r + r + 1.0f;
  // ⌊k/2⌋ = ⌊(k + 150)/2⌋ − 75 with k + 150 ≥ 0, and k − ⌊k/2⌋, modulo 2³²: exact for k in
  // [−150, 128], where both halves lie in [−75, 64] and their biased exponents k + 127 in [52, 191].
  const unsigned k_low = ((k + 150u) >> 1) - 75u, k_high = k - k_low;
  const unsigned bits_low = (k_low + 127u) << 23, bits_high = (k_high + 127u) << 23;
  float two_to_low, two_to_high;
  __builtin_memcpy(&two_to_low, &bits_low, sizeof(float));
  __builtin_memcpy(&two_to_high, &bits_high, sizeof(float));
  return (e_r * two_to_high) * two_to_low;
}

// tanh z. On the host for float, through the odd symmetry tanh z = sign(z)·tanh|z| and
// tanh a = 1 − 2/(e^{2a} + 1) for a = |z|: the small term 2/(e^{2a} + 1) carries only a few ulp of
// relative error, so 1 minus it is rounded almost exactly and saturates to 1 (for a ≥ 44.5, where
// e^{2a} is +inf) as torch's tanh does; that keeps the gradient 1 − y² of saturated units as
// accurate as torch's. Near 0 the formula cancels, so the odd Taylor series to z⁹ is used for
// |z| < 1/4 (relative error < 1e-7), evaluated at |z| clamped to 1/4 so it never overflows. Both
// sides are computed and blended, so the loop still vectorises. NaN stays NaN.
template <typename T>
MATNET_HOST_DEVICE inline T hyperbolic_tangent(T z) {
#if defined(__CUDA_ARCH__)
  return tanh(z);
#else
  if constexpr (std::is_same_v<T, float>) {
    const float a = __builtin_fabsf(z);
    const float small = a < 0.25f ? a : 0.25f;
    const float s2 = small * small;
    const float series =
        small * (1.0f + s2 * (-1.0f / 3 + s2 * (2.0f / 15 + s2 * (-17.0f / 315 + s2 * (62.0f / 2835)))));
    const float formula = 1.0f - 2.0f / (exp_polynomial(2.0f * a) + 1.0f);
    // An arithmetic blend, not `cond ? series : formula`, which GCC turns into a branch; both
    // sides are finite for finite z, and NaN reaches the result through `formula`.
    const float use_series = a < 0.25f ? 1.0f : 0.0f;
    return __builtin_copysignf(use_series * series + (1.0f - use_series) * formula, z);
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

// σ(z), with torch's special values: sigmoid and tanh saturate to their limits at ±inf and overflow
// to them as torch's do; relu keeps NaN (torch.relu does), so a diverged input is not hidden.
template <Activation A, typename T>
MATNET_HOST_DEVICE inline T activate(T z) {
  if constexpr (A == Activation::Sigmoid) {
    return T(1) / (T(1) + exponential(-z));
  } else if constexpr (A == Activation::Tanh) {
    return hyperbolic_tangent(z);
  } else if constexpr (A == Activation::Relu) {
    return z < T(0) ? T(0) : z;
  } else {
    return z;
  }
}

// ∂L/∂z from g = ∂L/∂y and the output y = σ(z), so the pre-activation need not be saved:
// sigmoid g·y(1−y) · tanh g·(1−y²) · relu g·[y>0] · identity g. relu selects instead of
// multiplying, as torch's threshold_backward does: a NaN or inf in g of an inactive unit gives 0,
// and a NaN output passes g through.
template <Activation A, typename T>
MATNET_HOST_DEVICE inline T activation_backward(T g, T y) {
  if constexpr (A == Activation::Sigmoid) {
    return g * ((T(1) - y) * y);
  } else if constexpr (A == Activation::Tanh) {
    return g * (T(1) - y * y);
  } else if constexpr (A == Activation::Relu) {
    return y <= T(0) ? T(0) : g;
  } else {
    return g;
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
