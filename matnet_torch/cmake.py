"""Where CMake finds matnet_torch's C++ API (``find_package(matnet_torch)``).

``cmake_prefix_path`` is a CMake list of this package's ``share/cmake`` and that of the installed
torch, which the config file finds with ``find_package(Torch)``: the operator library must be used
with the LibTorch it was built against.
"""
import os

import torch.utils

cmake_prefix_path = ";".join([os.path.join(os.path.dirname(os.path.abspath(__file__)), "share", "cmake"),
                              torch.utils.cmake_prefix_path])
