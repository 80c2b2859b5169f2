#pragma once
// Shared pieces of the CUDA benchmarks: the device descriptor of the GPU we run on (for the peak
// bandwidth the results are a fraction of), cudaEvent timing for Google Benchmark's manual time,
// random device data, and a streaming-read baseline kernel.
#include <benchmark/benchmark.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/plan/devices.hpp>

namespace gf_bench {

namespace gf = gemmaforge;

// The descriptor of device 0 by its name (RTX 4090, H100 SXM/PCIe, H200); anything else is measured
// against the H100 SXM figure and says so in the benchmark context.
inline gf::device_info current_device() {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return gf::device_info_of<gf::devices::h100_80g>();
  const std::string name = p.name;
  if (name.find("4090") != std::string::npos) return gf::device_info_of<gf::devices::rtx4090>();
  gf::device_info h100 = gf::device_info_of<gf::devices::h100_80g>();
  if (name.find("H100") != std::string::npos && name.find("PCIe") != std::string::npos) h100.bandwidth_gbps = 2000;
  if (name.find("H200") != std::string::npos) {
    // H200 (SXM, 141 GB HBM3e): 4.8 TB/s (NVIDIA's data sheet); plan/devices.hpp has no H200 yet.
    h100.name = "h200 (H100 descriptor, H200 bandwidth)";
    h100.bandwidth_gbps = 4800;
  }
  return h100;
}

inline void add_device_context() {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return;
  const gf::device_info d = current_device();
  benchmark::AddCustomContext("gpu", p.name);
  benchmark::AddCustomContext("peak_GBps_used", std::to_string(d.bandwidth_gbps) + " (descriptor " + std::string(d.name) + ")");
}

// Bytes moved per iteration -> counters: bytes/s (Google Benchmark) and the fraction of peak.
inline void report_bandwidth(benchmark::State& st, double bytes_per_iter) {
  st.SetBytesProcessed(std::int64_t(bytes_per_iter * double(st.iterations())));
  st.counters["GBps"] = benchmark::Counter(bytes_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak_frac"] =
      benchmark::Counter(bytes_per_iter * 1e-9 / current_device().bandwidth_gbps, benchmark::Counter::kIsIterationInvariantRate);
}

class event_timer {
 public:
  event_timer() {
    cudaEventCreate(&a_);
    cudaEventCreate(&b_);
  }
  ~event_timer() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  void start(cudaStream_t s) { cudaEventRecord(a_, s); }
  double stop(cudaStream_t s) {  // seconds
    cudaEventRecord(b_, s);
    cudaEventSynchronize(b_);
    float ms = 0;
    cudaEventElapsedTime(&ms, a_, b_);
    return double(ms) * 1e-3;
  }

 private:
  cudaEvent_t a_ = nullptr, b_ = nullptr;
};

// Runs the benchmark loop with cudaEvent timing around `launch` (which enqueues on `s`).
template <class F>
void timed_loop(benchmark::State& st, cudaStream_t s, F&& launch) {
  event_timer t;
  launch();  // warm-up: module load, first-touch
  cudaStreamSynchronize(s);
  for (auto _ : st) {
    t.start(s);
    launch();
    st.SetIterationTime(t.stop(s));
  }
  if (cudaGetLastError() != cudaSuccess) st.SkipWithError("CUDA error");
}

template <int = 0>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void fill_bytes_kernel(std::uint32_t* p, std::size_t words, std::uint32_t seed) {
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < words; i += std::size_t(gridDim.x) * blockDim.x) {
    std::uint32_t x = std::uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    p[i] = x;
  }
}

// Random bf16 (or f32 when Bf16 = false) values uniform in [-scale, scale).
template <bool Bf16>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void fill_values_kernel(void* p, std::size_t n, std::uint32_t seed, float scale) {
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    std::uint32_t x = std::uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    const float v = (float(x >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
    if constexpr (Bf16) static_cast<std::uint16_t*>(p)[i] = gf::to_bf16(v).bits;
    else static_cast<float*>(p)[i] = v;
  }
}

inline void fill_random_bytes(void* p, std::size_t bytes, std::uint32_t seed) {
  fill_bytes_kernel<><<<1024, 256>>>(static_cast<std::uint32_t*>(p), bytes / 4, seed);
}
inline void fill_random_bf16(void* p, std::size_t n, std::uint32_t seed, float scale) {
  fill_values_kernel<true><<<1024, 256>>>(p, n, seed, scale);
}
inline void fill_random_f32(float* p, std::size_t n, std::uint32_t seed, float scale) {
  fill_values_kernel<false><<<1024, 256>>>(p, n, seed, scale);
}

// Streaming read baseline: every thread sums 16-byte words; one result per block.
template <int = 0>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void stream_read_kernel(const uint4* p, std::size_t n, unsigned* out) {
  unsigned acc = 0;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const uint4 v = __ldg(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) out[blockIdx.x] = acc;  // keeps the loads alive
}

// Device buffer for benchmarks (aborts the benchmark run on failure).
struct device_buffer {
  void* p = nullptr;
  std::size_t bytes = 0;
  explicit device_buffer(std::size_t n) : bytes(n) {
    if (cudaMalloc(&p, n) != cudaSuccess) {
      std::fprintf(stderr, "cudaMalloc of %zu bytes failed\n", n);
      p = nullptr;
    }
  }
  ~device_buffer() { cudaFree(p); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p); }
};

}  // namespace gf_bench

// main() of every CUDA benchmark binary: without a GPU it says so and exits 0 (CI builds the
// benchmarks but cannot run them).
#define GF_CUDA_BENCHMARK_MAIN()                                                                      \
  int main(int argc, char** argv) {                                                                   \
    int n = 0;                                                                                        \
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {                                            \
      std::printf("SKIPPED: no CUDA device; nothing measured\n");                                    \
      return 0;                                                                                       \
    }                                                                                                 \
    benchmark::Initialize(&argc, argv);                                                               \
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;                                 \
    gf_bench::add_device_context();                                                                   \
    benchmark::RunSpecifiedBenchmarks();                                                              \
    benchmark::Shutdown();                                                                            \
    return 0;                                                                                         \
  }
