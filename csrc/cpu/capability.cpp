#include "capability.h"

#include "amx/bilinear_amx.h"
#include "environment.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>

#ifdef MATNET_HAVE_X86_LANE_KERNELS
#include <cpuid.h>
#endif
#ifdef MATNET_HAVE_AMX_KERNELS
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace matnet::cpu {
namespace {

const char* name_of(CpuCapability capability) {
  switch (capability) {
    case CpuCapability::Amx:
      return "amx";
    case CpuCapability::Avx512:
      return "avx512";
    case CpuCapability::Avx2:
      return "avx2";
    case CpuCapability::Neon:
      return "neon";
    default:
      return "default";
  }
}

#ifdef MATNET_HAVE_X86_LANE_KERNELS
// The F16C half-precision conversions: CPUID leaf 1, ECX bit 29 (clang before 16 does not know
// "f16c" in __builtin_cpu_supports). Their registers are AVX's, whose OS support avx2 implies.
bool cpu_has_f16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
#endif

#ifdef MATNET_HAVE_AMX_KERNELS
// AMX-TILE and AMX-BF16 (CPUID leaf 7, EDX bits 24 and 22), and Linux's grant of the tile data
// registers to this process (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux ≥ 5.16),
// without which the first tile instruction raises SIGILL. Asked once; the grant covers every thread.
bool amx_usable() {
  static const bool usable = [] {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    if ((edx & (1u << 24)) == 0 || (edx & (1u << 22)) == 0) return false;
    constexpr long kRequestPermission = 0x1023, kTileData = 18;
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  return usable;
}
#endif

bool cpu_has(CpuCapability capability) {
#ifdef MATNET_HAVE_X86_LANE_KERNELS
  // __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0).
  switch (capability) {
    case CpuCapability::Amx:
#ifdef MATNET_HAVE_AMX_KERNELS
      return cpu_has(CpuCapability::Avx512) && amx_usable();
#else
      return false;
#endif
    case CpuCapability::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuCapability::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case CpuCapability::Neon:
      return false;
    case CpuCapability::Default:
      return true;
  }
  return false;
#elif defined(MATNET_HAVE_NEON_LANE_KERNELS)
  // Advanced SIMD is part of every ARMv8-A CPU.
  return capability == CpuCapability::Neon || capability == CpuCapability::Default;
#else
  return capability == CpuCapability::Default;
#endif
}

constexpr CpuCapability kBestFirst[] = {CpuCapability::Amx, CpuCapability::Avx512, CpuCapability::Avx2,
                                         CpuCapability::Neon, CpuCapability::Default};

CpuCapability parse(const std::string& name, const char* source) {
  for (CpuCapability capability : kBestFirst) {
    if (name != name_of(capability)) continue;
    TORCH_CHECK_VALUE(cpu_has(capability), "matnet: ", source, " asks for the '", name,
                      "' CPU kernels, which this CPU cannot run; it supports ",
                      c10::Join(", ", supported_cpu_capabilities()));
    return capability;
  }
  TORCH_CHECK_VALUE(false, "matnet: ", source, " must be one of amx, avx512, avx2, neon, default; got '", name, "'");
}

CpuCapability initial_capability() {
  if (const char* forced = std::getenv("MATNET_CPU_CAPABILITY"); forced != nullptr && *forced != '\0')
    return parse(forced, "MATNET_CPU_CAPABILITY");
  for (CpuCapability capability : kBestFirst)
    if (cpu_has(capability)) return capability;
  return CpuCapability::Default;
}

// Chosen on first use (a bad MATNET_CPU_CAPABILITY then raises from the first operator call and
// from matnet_torch.cpu_capability(), not from loading the library).
std::atomic<CpuCapability>& current() {
  static std::atomic<CpuCapability> capability{initial_capability()};
  return capability;
}

}  // namespace

CpuCapability cpu_capability() { return current().load(std::memory_order_relaxed); }

std::string cpu_capability_name() { return name_of(cpu_capability()); }

void set_cpu_capability(const std::string& name) {
  current().store(parse(name, "set_cpu_capability"), std::memory_order_relaxed);
}

std::vector<std::string> supported_cpu_capabilities() {
  std::vector<std::string> names;
  for (CpuCapability capability : kBestFirst)
    if (cpu_has(capability)) names.emplace_back(name_of(capability));
  return names;
}

bool environment_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::string(value) == "1";
}

bool scratch_checks_enabled() {
  static const bool enabled = environment_flag("MATNET_CHECK_SCRATCH");
  return enabled;
}

const LaneKernels* lane_kernels() {
#ifdef MATNET_HAVE_X86_LANE_KERNELS
  switch (cpu_capability()) {
    case CpuCapability::Amx:  // all that the AMX tiles do not take (bilinear_paths.cpp)
    case CpuCapability::Avx512:
      return &avx512::lane_kernels;
    case CpuCapability::Avx2:
      return &avx2::lane_kernels;
    default:
      break;
  }
#endif
#ifdef MATNET_HAVE_NEON_LANE_KERNELS
  if (cpu_capability() == CpuCapability::Neon) return &neon::lane_kernels;
#endif
  return nullptr;
}

}  // namespace matnet::cpu
