// Out-of-line functions of the public C++ API (csrc/include/matnet) that describe the library.
#include <ATen/core/dispatch/Dispatcher.h>

#include "../include/matnet/ops.h"

namespace matnet {

bool has_cuda_kernels() {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("matnet::has_cuda_kernels", "").typed<bool()>();
  return op.call();
}

}  // namespace matnet
