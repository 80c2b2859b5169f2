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

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Random, well-formed weight rows in any format (the same value ranges as tests/unit/cpu_test_util.hpp).
inline std::vector<std::byte> random_weight_bytes(gf::tensor_format f, std::int64_t rows, std::int64_t cols,
                                                  std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::uint64_t stride = gf::row_bytes(f, std::uint64_t(cols));
  std::vector<std::byte> w(stride * std::uint64_t(rows));
  std::byte* p = w.data();
  auto put16 = [&](std::size_t off, std::uint16_t v) { std::memcpy(p + off, &v, 2); };
  const std::uint64_t blocks = w.size() / gf::block_bytes(f);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    const std::size_t o = b * gf::block_bytes(f);
    switch (f) {
      case gf::tensor_format::f32: { float v = u(rng) * 0.1f; std::memcpy(p + o, &v, 4); break; }
      case gf::tensor_format::f16: put16(o, gf::to_f16(u(rng) * 0.1f).bits); break;
      case gf::tensor_format::bf16: put16(o, gf::to_bf16(u(rng) * 0.1f).bits); break;
      case gf::tensor_format::q8_0:
        put16(o, gf::to_f16(0.001f + 0.002f * (u(rng) + 1.0f)).bits);
        for (int i = 0; i < 32; ++i) p[o + 2 + i] = std::byte(std::uint8_t(std::int8_t(byte(rng) % 255 - 127)));
        break;
      case gf::tensor_format::q5_0:
        put16(o, gf::to_f16(0.004f + 0.004f * (u(rng) + 1.0f)).bits);
        for (int i = 0; i < 20; ++i) p[o + 2 + i] = std::byte(byte(rng));
        break;
      case gf::tensor_format::q4_k:
        put16(o, gf::to_f16(0.0005f + 0.0005f * (u(rng) + 1.0f)).bits);
        put16(o + 2, gf::to_f16(0.0005f + 0.0005f * (u(rng) + 1.0f)).bits);
        for (int i = 0; i < 140; ++i) p[o + 4 + i] = std::byte(byte(rng));
        break;
      case gf::tensor_format::q6_k:
        for (int i = 0; i < 192; ++i) p[o + i] = std::byte(byte(rng));
        for (int i = 0; i < 16; ++i) p[o + 192 + i] = std::byte(std::uint8_t(std::int8_t(byte(rng) % 128 - 64)));
        put16(o + 208, gf::to_f16(0.0002f + 0.0002f * (u(rng) + 1.0f)).bits);
        break;
    }
  }
  return w;
}

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

inline bool has_cuda_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

}  // namespace gf_cuda_test
