// Input validation shared by every kernel of the operator family (CPU, CUDA, Meta and the
// fallbacks), so that eager execution and torch.compile's fake tensors raise the same errors with
// the same words. Each check names the operator and the argument as the caller wrote it: "x", "u"
// for bilinear, "xs[2]", "us[2]" for input 2 of multi_bilinear (operator_family.h).
#pragma once

#include <ATen/core/List.h>
#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>
#include <c10/util/string_view.h>

#include <optional>

#include "activation.h"
#include "operator_family.h"

namespace matnet {

// Maps "identity" | "sigmoid" | "tanh" | "relu" to its enum; anything else is a ValueError.
Activation parse_activation(c10::string_view name, const char* op);

// The forward's arguments: xs[j] (..., p_j, q_j), us[j] (m, p_j), vs[j] (n, q_j), all with the same
// leading dimensions, m and n, dtype and device; bias (m, n) or none. Returns the parsed activation.
Activation check_forward_arguments(const FamilyMember& op, at::TensorList xs, at::TensorList us, at::TensorList vs,
                                   const std::optional<at::Tensor>& bias, c10::string_view activation);

// The backward's: the forward's inputs again, y and grad_y of the output's shape, and an output_mask
// of 3·D + 1 entries [dxs…, dus…, dvs…, dbias] (for bilinear [dX, dU, dV, dB]).
Activation check_backward_arguments(const FamilyMember& op, const at::Tensor& grad_y, at::TensorList xs,
                                    at::TensorList us, at::TensorList vs, const at::Tensor& y,
                                    c10::string_view activation, const c10::List<bool>& output_mask);

// (..., p, q) -> (..., m, n) for the leading dimensions of the inputs; symbolic so that the Meta
// kernels trace dynamic shapes.
c10::SymDimVector output_shape(at::TensorList xs, at::TensorList us, at::TensorList vs);

// Z_i = U (X_i Vᵀ) needs p·q·n + m·p·n multiply-adds, (U X_i) Vᵀ needs m·p·q + m·q·n (docs/design.md §1):
// whether the first is the cheaper order for U (m×p), X_i (p×q), V (n×q).
inline bool right_product_first(int64_t m, int64_t n, int64_t p, int64_t q) {
  return p * q * n + m * p * n <= m * p * q + m * q * n;
}

// The number of samples N of validated inputs (the product of the leading dimensions).
int64_t batch_size(at::TensorList xs);

}  // namespace matnet
