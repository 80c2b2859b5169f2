// A first [cuda] test: the bf16/f16/fp8 conversions give the same bits on the device as on the host.
#include <catch2/catch.hpp>

#include <gemmaforge/core/dtype.hpp>

#include <vector>

namespace gf = gemmaforge;

namespace {
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void convert_kernel(const float* in, std::uint16_t* bf, std::uint16_t* hf, std::uint8_t* f8, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  bf[i] = gf::to_bf16(in[i]).bits;
  hf[i] = gf::to_f16(in[i]).bits;
  f8[i] = gf::to_fp8_e4m3(in[i]).bits;
}
}  // namespace

TEST_CASE("dtype conversions agree between host and device", "[cuda]") {
  std::vector<float> in;
  for (int i = -2000; i <= 2000; ++i) in.push_back(float(i) * 0.37f + 1e-3f * float(i % 7));
  const int n = int(in.size());
  float* d_in; std::uint16_t* d_bf; std::uint16_t* d_hf; std::uint8_t* d_f8;
  REQUIRE(cudaMalloc(&d_in, n * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMalloc(&d_bf, n * 2) == cudaSuccess);
  REQUIRE(cudaMalloc(&d_hf, n * 2) == cudaSuccess);
  REQUIRE(cudaMalloc(&d_f8, n) == cudaSuccess);
  cudaMemcpy(d_in, in.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  convert_kernel<<<(n + 255) / 256, 256>>>(d_in, d_bf, d_hf, d_f8, n);
  REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
  std::vector<std::uint16_t> bf(n), hf(n);
  std::vector<std::uint8_t> f8(n);
  cudaMemcpy(bf.data(), d_bf, n * 2, cudaMemcpyDeviceToHost);
  cudaMemcpy(hf.data(), d_hf, n * 2, cudaMemcpyDeviceToHost);
  cudaMemcpy(f8.data(), d_f8, n, cudaMemcpyDeviceToHost);
  for (int i = 0; i < n; ++i) {
    CHECK(bf[i] == gf::to_bf16(in[i]).bits);
    CHECK(hf[i] == gf::to_f16(in[i]).bits);
    CHECK(f8[i] == gf::to_fp8_e4m3(in[i]).bits);
  }
  cudaFree(d_in); cudaFree(d_bf); cudaFree(d_hf); cudaFree(d_f8);
}
