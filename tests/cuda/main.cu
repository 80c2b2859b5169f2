// Main of the CUDA test binary. Without a usable GPU (this machine and CI have nvcc but no GPU,
// so cudaGetDeviceCount fails with "insufficient driver") it says so and exits 77, which CTest
// reports as Skipped: a [cuda] test never passes silently.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstddef>
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
  // Device facts for scripts/gpu-check's first step (one line, key=value).
  std::size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  int sm_clock_khz = 0, mem_clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&sm_clock_khz, cudaDevAttrClockRate, 0);
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf("DEVICE: sms=%d mem_free_bytes=%zu mem_total_bytes=%zu sm_clock_mhz=%d mem_clock_mhz=%d bus_bits=%d "
              "l2_bytes=%d runtime=%d driver=%d\n",
              prop.multiProcessorCount, free_b, total_b, sm_clock_khz / 1000, mem_clock_khz / 1000, bus_bits,
              prop.l2CacheSize, runtime, driver);
  return Catch::Session().run(argc, argv);
}
