// The only place the kernel launchers talk to the CUDA runtime: starting a kernel, the block's
// dynamic shared memory, and the device limits the launch plans are made from (plan_tiles).
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

namespace matnet::cuda {

// Completes plan (its shape set) for the current device once a kernel's shared memory (bytes_of)
// and modelled time (time_of) per tile size are known: the tile size, its shared memory, and the
// persistent blocks, as many as the device holds at once (resident(shared_bytes, &blocks) asks
// the runtime), at most one per tile. plan->supported stays false for an empty shape or if even
// one sample does not fit.
template <typename BytesOf, typename TimeOf, typename Resident>
cudaError_t plan_tiles(BytesOf bytes_of, TimeOf time_of, Resident resident, FusedPlan* plan) {
  if (plan->shape.empty()) return cudaSuccess;
  DeviceLimits limits;
  cudaError_t status = current_device_limits(&limits);
  if (status != cudaSuccess) return status;
  const int64_t batch = plan->shape.batch;
  plan->samples_per_tile = best_samples_per_tile(bytes_of, time_of, shared_budget(limits, bytes_of(1)), batch,
                                                 static_cast<int64_t>(limits.multiprocessors) * kResidentBlocks);
  if (plan->samples_per_tile == 0) return cudaSuccess;
  plan->shared_bytes = bytes_of(plan->samples_per_tile);
  int blocks_per_multiprocessor = 0;
  status = resident(plan->shared_bytes, &blocks_per_multiprocessor);
  if (status != cudaSuccess || blocks_per_multiprocessor == 0) return status;
  const int64_t tiles = (batch + plan->samples_per_tile - 1) / plan->samples_per_tile;
  const int64_t most = static_cast<int64_t>(limits.multiprocessors) * blocks_per_multiprocessor;
  plan->blocks = static_cast<int>(tiles < most ? tiles : most);
  plan->supported = true;
  return cudaSuccess;
}

}  // namespace matnet::cuda
