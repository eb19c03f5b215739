// σ and its derivative over flat arrays of scalars, for the CPU kernels' loops. A switch, not
// dispatch_activation's lambda: a lambda is a function of its own, which the compiler need not
// inline into an ISA's loop.
//
// Included inside each per-ISA translation unit's target pragma and namespace (like
// lanes/lane_kernels.h), so that every instruction set gets its own vectorised copy and no copy
// compiled for one ISA can stand in for another's at link time. Not guarded by #pragma once on purpose.

// σ over `size` scalars in place.
template <typename T>
void activate_in_place(Activation activation, T* values, int64_t size) {
  switch (activation) {
    case Activation::Sigmoid:
      for (int64_t k = 0; k < size; ++k) values[k] = activate<Activation::Sigmoid>(values[k]);
      break;
    case Activation::Tanh:
      for (int64_t k = 0; k < size; ++k) values[k] = activate<Activation::Tanh>(values[k]);
      break;
    case Activation::Relu:
      for (int64_t k = 0; k < size; ++k) values[k] = activate<Activation::Relu>(values[k]);
      break;
    case Activation::Identity:
      break;
  }
}

// grad[k] = ∂L/∂z[k] from grad[k] = ∂L/∂y[k] and y[k] = σ(z[k]), in place.
template <typename T>
void backpropagate_activation(Activation activation, T* grad, const T* y, int64_t size) {
  switch (activation) {
    case Activation::Sigmoid:
      for (int64_t k = 0; k < size; ++k) grad[k] = activation_backward<Activation::Sigmoid>(grad[k], y[k]);
      break;
    case Activation::Tanh:
      for (int64_t k = 0; k < size; ++k) grad[k] = activation_backward<Activation::Tanh>(grad[k], y[k]);
      break;
    case Activation::Relu:
      for (int64_t k = 0; k < size; ++k) grad[k] = activation_backward<Activation::Relu>(grad[k], y[k]);
      break;
    case Activation::Identity:
      break;
  }
}
