// The public C++ API of matnet_torch, for LibTorch programs:
//   matnet::bilinear, matnet::bilinear_backward   the operators, with autograd  (matnet/ops.h)
//   matnet::MatNetLayer                           the layer as a torch::nn module (matnet/layer.h)
// Build with CMake: find_package(matnet_torch) and link matnet_torch::matnet_torch (see README).
#pragma once

#include "layer.h"
#include "ops.h"
