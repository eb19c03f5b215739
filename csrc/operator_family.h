// The operator family: matnet::multi_bilinear, Y = σ(Σ_j U_j X^j V_jᵀ + B) over D inputs, and
// matnet::bilinear, the same with D = 1 (docs/design.md §2). Every kernel is written once, for lists of
// inputs; bilinear's x, u, v reach it as one-element lists (family_kernels.h), so the two operators
// run the same code on every device and agree bit for bit. A FamilyMember says which public operator
// a call came through, for the names in its error messages.
#pragma once

#include <cstddef>
#include <string>

namespace matnet {

struct FamilyMember {
  const char* forward;   // "matnet::bilinear" or "matnet::multi_bilinear"
  const char* backward;  // its backward operator
  bool lists;            // the arguments are lists xs, us, vs (else single tensors x, u, v)

  // What argument `name` ("x", "u" or "v") of input j is called: "x", or "xs[j]".
  std::string argument(const char* name, size_t j) const {
    return lists ? std::string(name) + "s[" + std::to_string(j) + "]" : std::string(name);
  }
};

inline constexpr FamilyMember kBilinear{"matnet::bilinear", "matnet::bilinear_backward", false};
inline constexpr FamilyMember kMultiBilinear{"matnet::multi_bilinear", "matnet::multi_bilinear_backward", true};

}  // namespace matnet
