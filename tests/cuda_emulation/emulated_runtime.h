// The CUDA runtime names of csrc/cuda/kernel_launch.cuh, emulated on CPU threads so that the
// kernels and their launchers run without a GPU: a launch runs the blocks one after another, each
// as blockDim.x threads (std::thread) meeting at a std::barrier for __syncthreads(). Shared
// memory is filled with 0xFF bytes (NaN) before every block, so reading an entry before it is
// written shows in the results.
//
// Force-included (g++ -include) ahead of the kernel sources compiled as C++ with
// -DMATNET_CUDA_EMULATION. Emulates what the kernels use: thread and block indices, barriers,
// dynamic shared memory, launches and device limits; not warps, timing or the memory model.
#pragma once

#include <cuda_runtime_api.h>

#include <barrier>
#include <cstddef>
#include <thread>
#include <vector>

#include "fused_plan.h"

#define __launch_bounds__(...)

inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

namespace matnet::cuda::emulation {

inline DeviceLimits limits{3, 227 * 1024, 228 * 1024};  // an H100's shared memory, few multiprocessors
inline std::barrier<>* block_barrier = nullptr;
inline std::vector<unsigned char> shared_memory;

}  // namespace matnet::cuda::emulation

inline void __syncthreads() { matnet::cuda::emulation::block_barrier->arrive_and_wait(); }

namespace matnet::cuda {

inline cudaError_t current_device_limits(DeviceLimits* limits) {
  *limits = emulation::limits;
  return cudaSuccess;
}

// As many blocks as fit by shared memory (1 KiB reserved per block), at most 8.
template <typename... Params>
cudaError_t resident_blocks(void (*)(Params...), int, std::size_t shared_bytes, int* blocks) {
  const std::size_t fit = emulation::limits.shared_bytes_per_multiprocessor / (shared_bytes + 1024);
  *blocks = shared_bytes > emulation::limits.shared_bytes_per_block ? 0 : static_cast<int>(fit < 8 ? fit : 8);
  return cudaSuccess;
}

template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), unsigned blocks, unsigned threads, std::size_t shared_bytes,
                          cudaStream_t, Args... args) {
  if (shared_bytes > emulation::limits.shared_bytes_per_block) return cudaErrorInvalidValue;
  gridDim = dim3(blocks);
  blockDim = dim3(threads);
  for (unsigned block = 0; block < blocks; ++block) {
    emulation::shared_memory.assign(shared_bytes, 0xFF);
    std::barrier<> barrier(threads);
    emulation::block_barrier = &barrier;
    std::vector<std::thread> workers;
    for (unsigned thread = 0; thread < threads; ++thread) {
      workers.emplace_back([&, thread] {
        threadIdx = {thread, 0, 0};
        blockIdx = {block, 0, 0};
        kernel(args...);
      });
    }
    for (std::thread& worker : workers) worker.join();
  }
  return cudaSuccess;
}

inline unsigned char* dynamic_shared_memory() { return emulation::shared_memory.data(); }

}  // namespace matnet::cuda
