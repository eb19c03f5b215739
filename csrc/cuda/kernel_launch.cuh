// The only place the kernel launchers talk to the CUDA runtime: starting a kernel, the block's
// dynamic shared memory, and the device limits and occupancy the launch plans are made from
// (plan_tiles), each asked of the runtime once per device and remembered.
//
// tests/cuda_emulation/emulated_runtime.h defines the same names on CPU threads; compiled with
// MATNET_CUDA_EMULATION, the kernels and their launchers then run (slowly) without a GPU, which is
// how their indexing, synchronisation and reductions are tested on machines without one.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "fused_plan.h"

#ifndef MATNET_CUDA_EMULATION
#include <map>
#include <mutex>
#include <tuple>

namespace matnet::cuda {

// Limits of the current device, queried once per device and kept for the life of the process.
// Host queries only: nothing is enqueued, so this may run while a CUDA graph is being captured.
inline cudaError_t current_device_limits(DeviceLimits* limits) {
  static std::mutex mutex;
  static std::map<int, DeviceLimits> known;
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) return status;
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto found = known.find(device); found != known.end()) {
    *limits = found->second;
    return cudaSuccess;
  }
  int multiprocessors = 0, per_block = 0, per_multiprocessor = 0;
  status = cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device);
  if (status == cudaSuccess) status = cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (status == cudaSuccess) {
    status = cudaDeviceGetAttribute(&per_multiprocessor, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device);
  }
  if (status != cudaSuccess) return status;
  *limits = {multiprocessors, static_cast<std::size_t>(per_block), static_cast<std::size_t>(per_multiprocessor)};
  known.emplace(device, *limits);
  return cudaSuccess;
}

// Blocks of `kernel` that fit on one multiprocessor at once (registers, threads, shared memory)
// with `shared_bytes` of dynamic shared memory. Asked of the runtime once per device, kernel and
// size (the answer does not change); the first time on a device, the kernel is also allowed all the
// dynamic shared memory a block may opt in to, so every planned size can be launched.
template <typename... Params>
cudaError_t resident_blocks(void (*kernel)(Params...), int threads, std::size_t shared_bytes, int* blocks) {
  static std::mutex mutex;
  // (kernel, device) -> allowed; (kernel, device, threads, bytes) -> blocks
  static std::map<std::tuple<const void*, int>, bool> allowed;
  static std::map<std::tuple<const void*, int, int, std::size_t>, int> known;
  DeviceLimits limits;
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) status = current_device_limits(&limits);
  if (status != cudaSuccess) return status;
  const void* id = reinterpret_cast<const void*>(kernel);
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto found = known.find(std::make_tuple(id, device, threads, shared_bytes)); found != known.end()) {
    *blocks = found->second;
    return cudaSuccess;
  }
  if (!allowed.count(std::make_tuple(id, device))) {
    status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(limits.shared_bytes_per_block));
    if (status != cudaSuccess) return status;
    allowed.emplace(std::make_tuple(id, device), true);
  }
  status = cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, kernel, threads, shared_bytes);
  if (status == cudaSuccess) known.emplace(std::make_tuple(id, device, threads, shared_bytes), *blocks);
  return status;
}

// kernel<<<blocks, threads, shared_bytes, stream>>>(args...), then the launch check. A kernel
// given more than the default 48 KiB of dynamic shared memory must have been planned with that
// size (resident_blocks), which allowed it.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), unsigned blocks, unsigned threads, std::size_t shared_bytes,
                          cudaStream_t stream, Args... args) {
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
