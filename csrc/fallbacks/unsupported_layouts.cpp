// Every matnet operator on sparse (COO, CSR, …) tensors: one clear error naming the operator and the
// argument, instead of the dispatcher's "could not run … with arguments from the 'SparseCPU' backend".
// The kernels are written for dense (strided) tensors; x.to_dense() is the way in.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <string>

namespace matnet::layouts {
namespace {

void raise_unsupported_layout(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const auto& arguments = op.schema().arguments();
  const auto values = torch::jit::last(*stack, arguments.size());
  const auto check = [&](const std::string& name, const at::Tensor& t) {
    TORCH_CHECK(!t.defined() || t.layout() == at::kStrided, op.schema().name(), ": ", name, " has layout ", t.layout(),
                "; the operators take dense (strided) tensors: pass ", name, ".to_dense()");
  };
  for (size_t k = 0; k < arguments.size(); ++k) {
    const c10::IValue& value = values[k];
    if (value.isTensor()) {
      check(arguments[k].name(), value.toTensor());
    } else if (value.isTensorList()) {
      const auto list = value.toTensorVector();
      for (size_t j = 0; j < list.size(); ++j) check(arguments[k].name() + "[" + std::to_string(j) + "]", list[j]);
    }
  }
  TORCH_CHECK(false, op.schema().name(), ": got a tensor whose layout has no kernel; pass dense (strided) tensors");
}

void register_for(torch::Library& m) {
  for (const char* name : {"bilinear", "bilinear_backward", "multi_bilinear", "multi_bilinear_backward"})
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<&raise_unsupported_layout>());
}

}  // namespace

TORCH_LIBRARY_IMPL(matnet, SparseCPU, m) { register_for(m); }
TORCH_LIBRARY_IMPL(matnet, SparseCUDA, m) { register_for(m); }
TORCH_LIBRARY_IMPL(matnet, SparseCsrCPU, m) { register_for(m); }
TORCH_LIBRARY_IMPL(matnet, SparseCsrCUDA, m) { register_for(m); }

}  // namespace matnet::layouts
