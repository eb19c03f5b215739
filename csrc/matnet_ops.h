// The operators' C++ entry points, for the library's own sources; they are the public header's.
#pragma once

#include "include/matnet/ops.h"
