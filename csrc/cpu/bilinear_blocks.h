// The bilinear layer's forward and backward on blocks of L samples held side by side in vector
// lanes (lane_kernels.h). Each function is compiled for AVX-512, AVX2 and baseline x86-64 and
// picked when the library loads (target_clones); bilinear_cpu.cpp spreads the blocks over threads.
#pragma once

#include <cstdint>

#include "../activation.h"
#include "../bilinear_checks.h"
#include "lane_kernels.h"

namespace matnet::cpu {

// Samples per block: one vector of lanes.
template <typename T>
constexpr int64_t kBlockSamples = kLanes<T>;

template <typename T>
struct ForwardProblem {
  const T* x;     // (batch, p, q)
  const T* u;     // (m, p)
  const T* v;     // (n, q)
  const T* bias;  // (m, n) or null
  T* y;           // (batch, m, n)
  Activation activation;
  BilinearSizes sizes;
};

template <typename T>
struct BackwardProblem {
  const T* grad_y;  // (batch, m, n)
  const T* x;       // (batch, p, q)
  const T* u;       // (m, p)
  const T* v;       // (n, q)
  const T* y;       // (batch, m, n)
  Activation activation;
  BilinearSizes sizes;
  BilinearOutputMask mask;
  T* grad_x;  // (batch, p, q) or null
};

// One thread's sums over its samples, lane by lane: dU (m·p), dV (n·q), dB (m·n) lane vectors,
// each null where not needed. The lanes and threads are summed once at the end.
template <typename T>
struct LaneSums {
  Lanes<T>* grad_u;
  Lanes<T>* grad_v;
  Lanes<T>* grad_bias;
};

// Lane vectors of scratch that forward_blocks and backward_blocks need.
int64_t forward_scratch_vectors(const BilinearSizes& sizes);
int64_t backward_scratch_vectors(const BilinearSizes& sizes);

// Blocks [first_block, last_block) of kBlockSamples samples each (the last one may be partial).
void forward_blocks(const ForwardProblem<float>& problem, int64_t first_block, int64_t last_block,
                    Lanes<float>* scratch);
void forward_blocks(const ForwardProblem<double>& problem, int64_t first_block, int64_t last_block,
                    Lanes<double>* scratch);
void backward_blocks(const BackwardProblem<float>& problem, int64_t first_block, int64_t last_block,
                     Lanes<float>* scratch, const LaneSums<float>& sums);
void backward_blocks(const BackwardProblem<double>& problem, int64_t first_block, int64_t last_block,
                     Lanes<double>* scratch, const LaneSums<double>& sums);

}  // namespace matnet::cpu
