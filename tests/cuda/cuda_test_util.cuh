#pragma once
// Helpers of the [cuda] tests: device buffers, random inputs in every weight format, bit comparison.
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/tensor.hpp>

#include "support/random_inputs.hpp"

namespace gf_cuda_test {

namespace gf = gemmaforge;

#define GF_REQUIRE_CUDA(expr) REQUIRE((expr) == cudaSuccess)

// A device array of n T, freed on scope exit.
template <class T>
class dbuf {
 public:
  explicit dbuf(std::size_t n) : n_(n) { GF_REQUIRE_CUDA(cudaMalloc(&p_, std::max<std::size_t>(n, 1) * sizeof(T))); }
  explicit dbuf(const std::vector<T>& h) : dbuf(h.size()) { upload(h); }
  dbuf(const dbuf&) = delete;
  dbuf& operator=(const dbuf&) = delete;
  ~dbuf() { cudaFree(p_); }
  T* get() const { return p_; }
  std::size_t size() const { return n_; }
  void upload(const std::vector<T>& h) {
    REQUIRE(h.size() <= n_);
    GF_REQUIRE_CUDA(cudaMemcpy(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    // A pageable H2D cudaMemcpy may return before its DMA lands, and the executor's stream is
    // non-blocking (no order with the legacy stream): wait, or a kernel may read stale data (C14).
    GF_REQUIRE_CUDA(cudaDeviceSynchronize());
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    GF_REQUIRE_CUDA(cudaDeviceSynchronize());
    GF_REQUIRE_CUDA(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

inline std::uint32_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Number of positions where two float arrays differ in any bit.
inline std::size_t bit_mismatches(const std::vector<float>& a, const std::vector<float>& b, std::size_t n) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += bits(a[i]) != bits(b[i]);
  return bad;
}

using gemmaforge::testing::random_floats;
using gemmaforge::testing::random_weight_bytes;

// A weight matrix on the host and its device copy.
struct weight_pair {
  std::vector<std::byte> host;
  dbuf<std::byte> dev;
  gf::weight_view host_view, dev_view;
  weight_pair(gf::tensor_format f, std::int64_t rows, std::int64_t cols, std::uint32_t seed)
      : host(random_weight_bytes(f, rows, cols, seed)), dev(host.size()) {
    dev.upload(host);
    host_view = gf::weight_view{f, host.data(), rows, cols};
    dev_view = gf::weight_view{f, dev.get(), rows, cols};
  }
};

}  // namespace gf_cuda_test
