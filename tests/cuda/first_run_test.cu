// What a first GPU run needs to be readable and not to trip over itself (review findings C11, C12,
// C15): launch errors keep their CUDA cause, a capture left open by a failed step does not break
// the kv_pool copies that run between steps, and RoPE's device cos/sin equal the host's for every
// position of a 32K context at both bases.
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/executor.cuh>
#include <gemmaforge/backend/cuda/graph.cuh>
#include <gemmaforge/backend/cuda/rope.cuh>
#include <gemmaforge/math/rope.hpp>

#include "cuda/cuda_test_util.cuh"

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_cuda_test;

namespace {
__global__ void noop_kernel() {}
}  // namespace

TEST_CASE("cuda errors: a failed launch reports its CUDA cause (C11)", "[cuda][errors]") {
  noop_kernel<<<1, 4096>>>();  // more threads per block than any GPU allows
  const gf::status st = gc::detail::launch_status();
  REQUIRE(st == gf::status::cuda_error);
  try {
    gc::throw_if_failed(st, "cuda test launch");
    FAIL("expected an exception");
  } catch (const gf::error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(e.code() == gf::errc::cuda);
    CHECK(msg.find("cuda test launch") != std::string::npos);
    CHECK(msg.find("cudaErrorInvalidConfiguration") != std::string::npos);
  }
  // The cause is consumed: a later, unrelated failure does not inherit it.
  CHECK(gc::detail::last_launch_error() == cudaSuccess);
}

TEST_CASE("cuda graphs: a capture left open by a failed step does not break kv copies (C12)", "[cuda][graph]") {
  cudaStream_t s = nullptr;
  GF_REQUIRE_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  dbuf<float> a(std::vector<float>(256, 1.5f)), b(256);
  gc::decode_graphs graphs;
  graphs.resize(2);
  graphs.begin_capture(s);  // a step begins capturing ... and throws before end_capture
  // Admission copies a prefix ring with kv_copy (device_copy), which synchronizes the device: with
  // the capture still open that used to fail (and, under the engine, escape step()).
  REQUIRE_NOTHROW(gc::detail::device_copy(b.get(), a.get(), 256 * sizeof(float)));
  CHECK(b.download() == std::vector<float>(256, 1.5f));
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusActive;
  GF_REQUIRE_CUDA(cudaStreamIsCapturing(s, &cs));
  CHECK(cs == cudaStreamCaptureStatusNone);
  cudaStreamDestroy(s);
}

TEST_CASE("cuda rope: device cos/sin equal the host's at every position up to 32K, both bases (C15)",
          "[cuda][rope]") {
  constexpr int head_dim = 256, half = head_dim / 2, T = 32768;
  std::vector<std::int32_t> pos(T);
  for (int t = 0; t < T; ++t) pos[std::size_t(t)] = t;
  // x = (1, 0) pairs: the kernel's rotation then writes exactly (c, s), so the output is the table.
  std::vector<float> x(std::size_t(T) * head_dim, 0.0f);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < half; ++i) x[std::size_t(t) * head_dim + std::size_t(i)] = 1.0f;
  dbuf<std::int32_t> dpos(pos);
  for (double theta : {10000.0, 1000000.0}) {
    INFO("theta " << theta);
    const std::vector<float> inv = gc::rope_inv_freq_table(head_dim, theta, 1.0f);
    dbuf<float> dx(x), dinv(inv);
    REQUIRE(gc::launch_rope(dx.get(), dpos.get(), T, 1, head_dim, dinv.get(), nullptr) == gf::status::ok);
    const std::vector<float> got = dx.download();
    std::size_t bad = 0;
    std::vector<float> c(half), sn(half);
    for (int t = 0; t < T; ++t) {
      gf::math::rope_cos_sin(t, inv.data(), half, c.data(), sn.data());
      const float* g = got.data() + std::size_t(t) * head_dim;
      for (int i = 0; i < half; ++i) {
        bad += bits(g[i]) != bits(c[std::size_t(i)]);
        bad += bits(g[i + half]) != bits(sn[std::size_t(i)]);
      }
    }
    CHECK(bad == 0);
  }
}
