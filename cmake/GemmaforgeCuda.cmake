# CUDA detection for gemmaforge.
# Sets GF_HAVE_CUDA. Where nvcc is absent (or GEMMAFORGE_CUDA=OFF) the project stays a CPU build.
include_guard(GLOBAL)
set(GF_HAVE_CUDA OFF)

if(GEMMAFORGE_CUDA STREQUAL "OFF")
  message(STATUS "gemmaforge: CUDA backend disabled (GEMMAFORGE_CUDA=OFF)")
  return()
endif()

# "native" needs a GPU at configure time; CI has nvcc but no GPU, so default to the cards we target:
# sm_89 = RTX 4090 (the product's first device), sm_90 = H100.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "89;90" CACHE STRING "CUDA architectures (89 = RTX 4090, 90 = H100)")
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(GEMMAFORGE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "gemmaforge: GEMMAFORGE_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
  message(STATUS "gemmaforge: no CUDA compiler found; building the CPU backend only")
  return()
endif()

# CMake 3.25 knows no C++20 flag for nvcc: without these two lines cxx_std_20 fails on CUDA sources.
set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

find_package(CUDAToolkit REQUIRED)
# CUB/Thrust come as CCCL with the toolkit (lib64/cmake/cccl), not only as headers.
find_package(CCCL CONFIG QUIET HINTS "${CUDAToolkit_LIBRARY_DIR}/cmake" "${CUDAToolkit_TARGET_DIR}/lib64/cmake")
if(NOT TARGET CCCL::CCCL)
  if(GEMMAFORGE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "gemmaforge: CUDA found but CCCL (CUB/Thrust) config was not")
  endif()
  message(STATUS "gemmaforge: CCCL not found under the CUDA toolkit; CUDA backend off")
  return()
endif()
set(GF_HAVE_CUDA ON)
message(STATUS "gemmaforge: CUDA ${CUDAToolkit_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES}")
