# CMake package of matnet_torch's C++ API, installed with the Python package.
#
#   find_package(matnet_torch REQUIRED)
#   target_link_libraries(my_program PRIVATE matnet_torch::matnet_torch)
#
# with CMAKE_PREFIX_PATH set to the output of
#   python -c "import matnet_torch; print(matnet_torch.cmake_prefix_path)"
# (this directory's prefix and that of the torch the library was built against).
#
# Defines the imported target matnet_torch::matnet_torch: the operator library matnet_torch/_C*.so,
# the headers (#include <matnet/matnet.h>) and, through find_package(Torch), LibTorch with its CUDA
# libraries when torch is a CUDA build. Sets matnet_torch_LIBRARY and matnet_torch_INCLUDE_DIR.
include(CMakeFindDependencyMacro)
find_dependency(Torch)

get_filename_component(_matnet_package_dir "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

# The headers are matnet_torch/include in an installed package, and csrc/include next to the
# package in a source checkout (pip install -e .).
find_path(matnet_torch_INCLUDE_DIR matnet/matnet.h
          PATHS "${_matnet_package_dir}/include" "${_matnet_package_dir}/../csrc/include" NO_DEFAULT_PATH)
file(GLOB matnet_torch_LIBRARY "${_matnet_package_dir}/_C*.so")

if(NOT matnet_torch_INCLUDE_DIR OR NOT matnet_torch_LIBRARY)
  set(matnet_torch_FOUND FALSE)
  set(matnet_torch_NOT_FOUND_MESSAGE
      "matnet_torch: the headers (matnet/matnet.h) or the operator library (_C*.so) are missing from "
      "${_matnet_package_dir}; build the package with `pip install --no-build-isolation -e .`")
  return()
endif()

if(NOT TARGET matnet_torch::matnet_torch)
  add_library(matnet_torch::matnet_torch SHARED IMPORTED)
  set_target_properties(matnet_torch::matnet_torch PROPERTIES
    # A Python extension module has no soname, so programs record this full path to it.
    IMPORTED_LOCATION "${matnet_torch_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${matnet_torch_INCLUDE_DIR}"
    # TORCH_LIBRARIES holds libtorch and, in a CUDA build of torch, c10_cuda and the CUDA runtime.
    INTERFACE_LINK_LIBRARIES "${TORCH_LIBRARIES}")
endif()
unset(_matnet_package_dir)
