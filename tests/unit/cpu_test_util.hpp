#pragma once
// Helpers shared by the math_* and cpu_* tests: random weight matrices in every storage format,
// the list of ISAs this machine can run, and a plain double-precision reference dequantizer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gemmaforge/backend/cpu/cpu_features.hpp>
#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/tensor.hpp>

#include "support/random_inputs.hpp"

namespace gf_test {

namespace gf = gemmaforge;

inline std::vector<gf::cpu::cpu_isa> available_isas() {
  std::vector<gf::cpu::cpu_isa> v;
  for (auto i : {gf::cpu::cpu_isa::scalar, gf::cpu::cpu_isa::avx2, gf::cpu::cpu_isa::avx512})
    if (gf::cpu::cpu_isa_supported(i)) v.push_back(i);
  return v;
}

// A weight matrix with its own storage.
struct owned_weight {
  std::vector<std::byte> bytes;
  gf::weight_view view;
};

// Random but well-formed weights (tests/support/random_inputs.hpp) with their own storage.
inline owned_weight random_weight(gf::tensor_format f, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  owned_weight w;
  w.bytes = gf::testing::random_weight_bytes(f, rows, cols, seed);
  w.view = gf::weight_view{f, w.bytes.data(), rows, cols};
  return w;
}

using gf::testing::random_floats;

inline bool same_bits(float a, float b) {
  std::uint32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  return x == y;
}

}  // namespace gf_test

namespace gf_test {

// Independent, deliberately plain dequantizer (double precision, straight from the format
// descriptions in reference/gemma-models.md §5), used as the reference of the kernel tests.
inline double ref_f16(const std::byte* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return double(gf::to_float(gf::f16::from_bits(h)));
}

inline std::vector<double> ref_dequant_row(gf::tensor_format f, const std::byte* row, std::int64_t cols) {
  std::vector<double> y(std::size_t(cols), 0.0);
  const auto u8 = [&](std::size_t o) { return int(std::uint8_t(row[o])); };
  const auto i8 = [&](std::size_t o) { return int(std::int8_t(std::uint8_t(row[o]))); };
  switch (f) {
    case gf::tensor_format::f32:
      for (std::int64_t c = 0; c < cols; ++c) { float v; std::memcpy(&v, row + 4 * c, 4); y[c] = v; }
      break;
    case gf::tensor_format::f16:
      for (std::int64_t c = 0; c < cols; ++c) y[c] = ref_f16(row + 2 * c);
      break;
    case gf::tensor_format::bf16:
      for (std::int64_t c = 0; c < cols; ++c) {
        std::uint16_t h;
        std::memcpy(&h, row + 2 * c, 2);
        y[c] = double(gf::to_float(gf::bf16::from_bits(h)));
      }
      break;
    case gf::tensor_format::q8_0:
      for (std::int64_t b = 0; b < cols / 32; ++b)
        for (int i = 0; i < 32; ++i) y[32 * b + i] = ref_f16(row + 34 * b) * i8(34 * b + 2 + i);
      break;
    case gf::tensor_format::q5_0:
      for (std::int64_t b = 0; b < cols / 32; ++b) {
        const std::size_t o = 22 * b;
        std::uint32_t qh = 0;
        for (int k = 0; k < 4; ++k) qh |= std::uint32_t(u8(o + 2 + k)) << (8 * k);
        for (int i = 0; i < 16; ++i) {
          const int lo = u8(o + 6 + i) & 15, hi = u8(o + 6 + i) >> 4;
          y[32 * b + i] = ref_f16(row + o) * ((lo | int((qh >> i) & 1) << 4) - 16);
          y[32 * b + i + 16] = ref_f16(row + o) * ((hi | int((qh >> (i + 16)) & 1) << 4) - 16);
        }
      }
      break;
    case gf::tensor_format::q4_k:
      for (std::int64_t b = 0; b < cols / 256; ++b) {
        const std::size_t o = 144 * b;
        const double d = ref_f16(row + o), dmin = ref_f16(row + o + 2);
        auto s = [&](int j) { return u8(o + 4 + j); };
        for (int sb = 0; sb < 8; ++sb) {
          int sc, m;
          if (sb < 4) { sc = s(sb) & 63; m = s(sb + 4) & 63; }
          else { sc = (s(sb + 4) & 0xF) | ((s(sb - 4) >> 6) << 4); m = (s(sb + 4) >> 4) | ((s(sb) >> 6) << 4); }
          for (int l = 0; l < 32; ++l) {
            const int byte = u8(o + 16 + 32 * (sb / 2) + l);
            const int q = sb % 2 ? byte >> 4 : byte & 15;
            y[256 * b + 32 * sb + l] = d * sc * q - dmin * m;
          }
        }
      }
      break;
    case gf::tensor_format::q6_k:
      for (std::int64_t b = 0; b < cols / 256; ++b) {
        const std::size_t o = 210 * b;
        const double d = ref_f16(row + o + 208);
        for (int n = 0; n < 2; ++n)
          for (int l = 0; l < 32; ++l) {
            const int qh = u8(o + 128 + 32 * n + l);
            const int a = u8(o + 64 * n + l), c = u8(o + 64 * n + 32 + l);
            const int q1 = ((a & 15) | ((qh & 3) << 4)) - 32;
            const int q2 = ((c & 15) | (((qh >> 2) & 3) << 4)) - 32;
            const int q3 = ((a >> 4) | (((qh >> 4) & 3) << 4)) - 32;
            const int q4 = ((c >> 4) | (((qh >> 6) & 3) << 4)) - 32;
            const int is = l / 16;
            auto sc = [&](int k) { return i8(o + 192 + 8 * n + k); };
            y[256 * b + 128 * n + l] = d * sc(is) * q1;
            y[256 * b + 128 * n + l + 32] = d * sc(is + 2) * q2;
            y[256 * b + 128 * n + l + 64] = d * sc(is + 4) * q3;
            y[256 * b + 128 * n + l + 96] = d * sc(is + 6) * q4;
          }
      }
      break;
  }
  return y;
}

}  // namespace gf_test
