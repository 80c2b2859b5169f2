// Main of the CUDA test binary. Without a usable GPU (this machine and CI have nvcc but no GPU,
// so cudaGetDeviceCount fails with "insufficient driver") it says so and exits 77, which CTest
// reports as Skipped: a [cuda] test never passes silently.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cuda_runtime.h>

int main(int argc, char** argv) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s, count %d); [cuda] tests not run\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "ok", count);
    return 77;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("CUDA device 0: %s (sm_%d%d, %.1f GiB)\n", prop.name, prop.major, prop.minor,
              double(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  return Catch::Session().run(argc, argv);
}
