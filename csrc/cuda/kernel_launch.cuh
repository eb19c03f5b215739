// The only place the kernel launchers talk to the CUDA runtime: starting a kernel, the block's
// dynamic shared memory, and the device limits the launch plans are made from.
//
// tests/cuda_emulation/emulated_runtime.h defines the same names on CPU threads; compiled with
// MATNET_CUDA_EMULATION, the kernels and their launchers then run (slowly) without a GPU, which is
// how their indexing, synchronisation and reductions are tested on machines without one.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "fused_plan.h"

#ifndef MATNET_CUDA_EMULATION
namespace matnet::cuda {

// Limits of the current device. Host queries only: nothing is enqueued, so this may run while a
// CUDA graph is being captured.
inline cudaError_t current_device_limits(DeviceLimits* limits) {
  int device = 0, multiprocessors = 0, per_block = 0, per_multiprocessor = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) status = cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device);
  if (status == cudaSuccess) status = cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (status == cudaSuccess) {
    status = cudaDeviceGetAttribute(&per_multiprocessor, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device);
  }
  *limits = {multiprocessors, static_cast<std::size_t>(per_block), static_cast<std::size_t>(per_multiprocessor)};
  return status;
}

// Dynamic shared memory a kernel may use without opting in to more.
constexpr std::size_t kDefaultSharedBytes = 48 * 1024;

// Blocks of `kernel` that fit on one multiprocessor at once (registers, threads, shared memory).
template <typename... Params>
cudaError_t resident_blocks(void (*kernel)(Params...), int threads, std::size_t shared_bytes, int* blocks) {
  cudaError_t status =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes));
  if (status != cudaSuccess) return status;
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, kernel, threads, shared_bytes);
}

// kernel<<<blocks, threads, shared_bytes, stream>>>(args...), then the launch check.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), unsigned blocks, unsigned threads, std::size_t shared_bytes,
                          cudaStream_t stream, Args... args) {
  if (shared_bytes > kDefaultSharedBytes) {
    const cudaError_t status =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes));
    if (status != cudaSuccess) return status;
  }
  kernel<<<blocks, threads, shared_bytes, stream>>>(args...);
  return cudaGetLastError();
}

// The block's dynamic shared memory (its size is the launch's shared_bytes).
__device__ inline unsigned char* dynamic_shared_memory() {
  extern __shared__ __align__(16) unsigned char memory[];
  return memory;
}

}  // namespace matnet::cuda
#endif
