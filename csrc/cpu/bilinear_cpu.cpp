// CPU kernels of matnet::bilinear and matnet::bilinear_backward (design.md §1): validation and
// outputs here; the arithmetic in bilinear_paths.h (per-ISA lane kernels or the GEMM path).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "../bilinear_checks.h"
#include "bilinear_paths.h"

namespace matnet::cpu {
namespace {

// t (..., rows, cols) as a contiguous (N, rows, cols) batch.
at::Tensor as_samples(const at::Tensor& t, const BilinearSizes& sizes, int64_t rows, int64_t cols) {
  return t.contiguous().view({sizes.batch, rows, cols});
}

at::Tensor bilinear_cpu(const at::Tensor& x, const at::Tensor& u, const at::Tensor& v,
                        const std::optional<at::Tensor>& bias, c10::string_view activation) {
  constexpr const char* op = "matnet::bilinear";
  const Activation parsed = check_bilinear_inputs(op, x, u, v, bias, activation);
  at::Tensor y = at::empty_symint(bilinear_output_shape(x, u, v), x.options());
  if (y.numel() == 0) return y;
  const BilinearSizes s = bilinear_sizes(x, u, v);
  at::Tensor y_samples = y.view({s.batch, s.m, s.n});
  run_bilinear_forward({{as_samples(x, s, s.p, s.q), u.contiguous(), v.contiguous()}},
                       bias.has_value() ? bias->contiguous() : at::Tensor(), parsed, y_samples);
  return y;
}

BilinearGradients bilinear_backward_cpu(const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& u,
                                        const at::Tensor& v, const at::Tensor& y, c10::string_view activation,
                                        const c10::List<bool>& output_mask) {
  constexpr const char* op = "matnet::bilinear_backward";
  const BilinearOutputMask mask = bilinear_output_mask(op, output_mask);
  const Activation parsed = check_bilinear_backward_inputs(op, grad_y, x, u, v, y, activation);
  const BilinearSizes s = bilinear_sizes(x, u, v);
  at::Tensor grad_x = mask[0] ? at::empty_like(x, at::MemoryFormat::Contiguous) : at::Tensor();
  at::Tensor grad_u = mask[1] ? at::empty({s.m, s.p}, u.options()) : at::Tensor();
  at::Tensor grad_v = mask[2] ? at::empty({s.n, s.q}, v.options()) : at::Tensor();
  at::Tensor grad_bias = mask[3] ? at::empty({s.m, s.n}, x.options()) : at::Tensor();
  run_bilinear_backward(gradient_samples(grad_y, s.batch, s.m, s.n), as_samples(y, s, s.m, s.n),
                        {{as_samples(x, s, s.p, s.q), u.contiguous(), v.contiguous()}}, parsed,
                        {{mask[0] ? grad_x.view({s.batch, s.p, s.q}) : at::Tensor(), grad_u, grad_v}}, grad_bias);
  return {grad_x, grad_u, grad_v, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, CPU, m) {
  m.impl("bilinear", &bilinear_cpu);
  m.impl("bilinear_backward", &bilinear_backward_cpu);
}

}  // namespace matnet::cpu
