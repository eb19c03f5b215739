// Every schema of the matnet operator library, declared once. Kernels are registered per dispatch
// key in csrc/cpu, csrc/cuda, csrc/meta and csrc/autograd.
#include <torch/library.h>

#include "cpu/capability.h"

TORCH_LIBRARY(matnet, m) {
  // y = σ(U X_i Vᵀ + B) for x of shape (..., p, q), u (m, p), v (n, q), bias (m, n).
  m.def(
      "bilinear(Tensor x, Tensor u, Tensor v, Tensor? bias=None, str activation=\"identity\") -> Tensor",
      {at::Tag::pt2_compliant_tag});
  // (dX, dU, dV, dB) from the saved x and y only; entries whose output_mask (4 entries) is false are None.
  m.def(
      "bilinear_backward(Tensor grad_y, Tensor x, Tensor u, Tensor v, Tensor y, str activation, "
      "bool[] output_mask) -> (Tensor, Tensor, Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
  // y = σ(Σ_j U_j X_i^j V_jᵀ + B) for xs[j] (..., p_j, q_j) with the same leading dimensions,
  // us[j] (m, p_j), vs[j] (n, q_j), bias (m, n): the multimodal encoder (docs/design.md §2).
  m.def(
      "multi_bilinear(Tensor[] xs, Tensor[] us, Tensor[] vs, Tensor? bias=None, str activation=\"identity\") -> Tensor",
      {at::Tag::pt2_compliant_tag});
  // The gradients that output_mask asks for, from the saved inputs and y only, in the mask's order
  // [dxs[0] … dxs[D−1], dus[0] …, dvs[0] …, dbias] (3·D + 1 entries).
  m.def(
      "multi_bilinear_backward(Tensor grad_y, Tensor[] xs, Tensor[] us, Tensor[] vs, Tensor y, str activation, "
      "bool[] output_mask) -> Tensor[]",
      {at::Tag::pt2_compliant_tag});
  // The same gradients as multi_bilinear_backward, computed with differentiable ATen operators: what a
  // second derivative and torch.func differentiate (csrc/autograd/differentiable_backward.h).
  m.def(
      "differentiable_backward(Tensor grad_y, Tensor[] xs, Tensor[] us, Tensor[] vs, Tensor y, str activation, "
      "bool[] output_mask) -> Tensor[]",
      {at::Tag::pt2_compliant_tag});
  // Which CPU kernels run ("amx", "avx512", "avx2", "neon" or "default"; csrc/cpu/capability.h), which this CPU
  // supports, and forcing one (as the environment variable MATNET_CPU_CAPABILITY does at start).
  m.def("cpu_capability() -> str", &matnet::cpu::cpu_capability_name);
  m.def("supported_cpu_capabilities() -> str[]", &matnet::cpu::supported_cpu_capabilities);
  m.def("set_cpu_capability(str name) -> ()", [](c10::string_view name) { matnet::cpu::set_cpu_capability(std::string(name)); });
  // Whether this build carries CUDA kernels (the others raise a clear error on CUDA tensors).
  m.def("has_cuda_kernels() -> bool", [] {
#ifdef WITH_CUDA
    return true;
#else
    return false;
#endif
  });
}
