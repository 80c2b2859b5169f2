#pragma once
// Random kernel inputs shared by the CPU tests, the CUDA tests and the CPU benchmarks: f32 vectors,
// and well-formed weight rows in every storage format with realistic scale ranges (products stay
// O(1), so tolerances mean the same thing in every format). Same seed, same bytes, on every tier.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/format.hpp>

namespace gemmaforge::testing {

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// rows x cols weights in format f (cols a multiple of block_elems(f)), rows stored back to back.
inline std::vector<std::byte> random_weight_bytes(tensor_format f, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::uint64_t stride = row_bytes(f, std::uint64_t(cols));
  std::vector<std::byte> w(stride * std::uint64_t(rows));
  std::byte* p = w.data();
  auto put16 = [&](std::size_t off, std::uint16_t v) { std::memcpy(p + off, &v, 2); };
  auto f16 = [](float x) { return to_f16(x).bits; };
  const std::uint64_t blocks = w.size() / block_bytes(f);
  for (std::uint64_t b = 0; b < blocks; ++b) {
    const std::size_t o = b * block_bytes(f);
    switch (f) {
      case tensor_format::f32: { const float v = u(rng) * 0.1f; std::memcpy(p + o, &v, 4); break; }
      case tensor_format::f16: put16(o, f16(u(rng) * 0.1f)); break;
      case tensor_format::bf16: put16(o, to_bf16(u(rng) * 0.1f).bits); break;
      case tensor_format::q8_0:
        put16(o, f16(0.001f + 0.002f * (u(rng) + 1.0f)));
        for (int i = 0; i < 32; ++i) p[o + 2 + i] = std::byte(std::uint8_t(std::int8_t(byte(rng) % 255 - 127)));
        break;
      case tensor_format::q5_0:
        put16(o, f16(0.004f + 0.004f * (u(rng) + 1.0f)));
        for (int i = 0; i < 20; ++i) p[o + 2 + i] = std::byte(byte(rng));
        break;
      case tensor_format::q4_k:
        put16(o, f16(0.0005f + 0.0005f * (u(rng) + 1.0f)));
        put16(o + 2, f16(0.0005f + 0.0005f * (u(rng) + 1.0f)));
        for (int i = 0; i < 140; ++i) p[o + 4 + i] = std::byte(byte(rng));
        break;
      case tensor_format::q6_k:
        for (int i = 0; i < 192; ++i) p[o + i] = std::byte(byte(rng));
        for (int i = 0; i < 16; ++i) p[o + 192 + i] = std::byte(std::uint8_t(std::int8_t(byte(rng) % 128 - 64)));
        put16(o + 208, f16(0.0002f + 0.0002f * (u(rng) + 1.0f)));
        break;
    }
  }
  return w;
}

}  // namespace gemmaforge::testing
