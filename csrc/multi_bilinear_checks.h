// Input validation of the multi-input operators (design.md §2), shared by the CPU, CUDA and Meta
// kernels like bilinear_checks.h: every input j is checked as bilinear checks its one input, with
// the index in the message (`us[2].size(1) (14) must equal xs[2].size(-2) (15)`), then across inputs.
#pragma once

#include <ATen/core/List.h>

#include "bilinear_checks.h"

namespace matnet {

// xs[j] (..., p_j, q_j), us[j] (m, p_j), vs[j] (n, q_j), all with the same leading dimensions,
// m and n, dtype and device; bias (m, n) or none. Returns the parsed activation.
Activation check_multi_bilinear_inputs(const char* op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                                       const std::optional<at::Tensor>& bias, c10::string_view activation);

// The forward's inputs again, y and grad_y of the output's shape, and an output_mask of 3·D + 1
// entries: [dxs[0] … dxs[D−1], dus[0] …, dvs[0] …, dbias].
Activation check_multi_bilinear_backward_inputs(const char* op, const at::Tensor& grad_y, at::TensorList xs,
                                                at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                                c10::string_view activation, const c10::List<bool>& output_mask);

// The backward's result: the defined gradients in the mask's order [dxs…, dus…, dvs…, dbias].
std::vector<at::Tensor> gradients_in_mask_order(const std::vector<at::Tensor>& grad_xs,
                                                const std::vector<at::Tensor>& grad_us,
                                                const std::vector<at::Tensor>& grad_vs, const at::Tensor& grad_bias);

// (..., m, n) for the leading dimensions of the inputs; symbolic for the Meta kernels.
c10::SymDimVector multi_bilinear_output_shape(at::TensorList xs, at::TensorList us, at::TensorList vs);

}  // namespace matnet
