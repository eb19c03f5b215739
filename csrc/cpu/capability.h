// Which CPU kernels run: chosen once from the CPU's features, or forced by the environment
// variable MATNET_CPU_CAPABILITY (like ATen's ATEN_CPU_CAPABILITY), or by set_cpu_capability.
//
//   amx      avx512's lane kernels, and bfloat16 on AMX tiles where   x86-64 with AVX-512F and
//            that is faster (amx/bilinear_amx.h)                       AMX-BF16, Linux
//   avx512   lane kernels for AVX-512 (16 floats per register)        x86-64 with AVX-512F
//   avx2     lane kernels for AVX2 + FMA (8 floats per register)      x86-64 with AVX2 and FMA
//   neon     lane kernels for Advanced SIMD (4 floats per register)   every aarch64 CPU
//   default  the portable path: each product one large GEMM over the   every CPU
//            flattened batch (bilinear_gemm.h), through ATen's BLAS
#pragma once

#include <string>
#include <vector>

#include "lanes/bilinear_lanes.h"

namespace matnet::cpu {

enum class CpuCapability { Default, Neon, Avx2, Avx512, Amx };

// The capability in use.
CpuCapability cpu_capability();
std::string cpu_capability_name();

// Forces `name` ("amx", "avx512", "avx2", "neon" or "default"); an error names the capabilities this CPU has.
void set_cpu_capability(const std::string& name);

// The names of the capabilities this CPU can run, best first ("default" is always last).
std::vector<std::string> supported_cpu_capabilities();

// The lane kernels of the capability in use; null for "default".
const LaneKernels* lane_kernels();

}  // namespace matnet::cpu
