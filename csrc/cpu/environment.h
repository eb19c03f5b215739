// The CPU kernels' switches read from the environment (MATNET_CHECK_SCRATCH, MATNET_AMX_EVERYWHERE).
#pragma once

namespace matnet::cpu {

// Whether the environment variable `name` is "1". Callers read it once, at first use.
bool environment_flag(const char* name);

}  // namespace matnet::cpu
