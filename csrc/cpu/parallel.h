// parallel_for over torch's intra-op threads: exactly at::get_num_threads() of them (what
// torch.set_num_threads set), whichever compiler built the extension.
//
// torch's at::parallel_for is a header template. In torch's OpenMP builds (the PyPI wheels, on
// x86-64 and aarch64 alike) its parallel region is compiled into our code, so it runs in parallel
// only if our compiler targets the OpenMP runtime torch loaded: GCC with -fopenmp does (libgomp,
// which torch ships), clang does not (its libomp would be a second runtime with a thread count of
// its own), and without -fopenmp the region is a plain serial call. There, and only there, the
// chunks run on threads started for the call, split exactly as at::parallel_for splits them.
#pragma once

#include <ATen/Parallel.h>
#include <c10/util/ParallelGuard.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace matnet::cpu {

// f(first, last) on [begin, end) cut into contiguous chunks, at most one per thread and (when
// grain_size > 0) at least grain_size long; serial inside another parallel region.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain_size, const F& f) {
#if AT_PARALLEL_NATIVE || defined(_OPENMP)
  at::parallel_for(begin, end, grain_size, f);
#else
  if (begin >= end) return;
  int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  if (grain_size > 0) threads = std::min(threads, at::divup(end - begin, grain_size));
  const int64_t chunk = at::divup(end - begin, threads);
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto run_chunk = [&](int64_t thread) {
    const int64_t first = begin + thread * chunk;
    if (first >= end) return;
    try {
      c10::ParallelGuard guard(true);  // at::in_parallel_region() is true inside
      f(first, std::min(end, first + chunk));
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  for (int64_t thread = 1; thread < threads; ++thread) workers.emplace_back(run_chunk, thread);
  run_chunk(0);
  for (std::thread& worker : workers) worker.join();
  if (error) std::rethrow_exception(error);
#endif
}

}  // namespace matnet::cpu
