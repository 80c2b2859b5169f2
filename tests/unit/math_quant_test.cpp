// math/quant.hpp: block layouts and dequantization, bit for bit.
//   1. Hand-built blocks with chosen d, scales, mins and quants; the expected floats are written
//      out from the format description (reference/gemma-models.md §5), not from the code.
//   2. Real blocks of the Gemma 3 270M Q4_K_M file against gguf-py's dequantizer (fixture).
//   3. dequantize_row for f32/f16/bf16 and for rows of several blocks.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include <gemmaforge/math/quant.hpp>

#include "unit/cpu_test_util.hpp"
#include "unit/math_quant_fixture.inc"

namespace gf = gemmaforge;
namespace gm = gemmaforge::math;

namespace {
void put_f16(unsigned char* p, float v) {
  const std::uint16_t h = gf::to_f16(v).bits;
  std::memcpy(p, &h, 2);
}
template <std::size_t N>
std::vector<float> dequant(gf::tensor_format f, const unsigned char (&bytes)[N], int n) {
  std::vector<float> y(static_cast<std::size_t>(n));
  gm::dequantize_row(f, reinterpret_cast<const std::byte*>(bytes), y.data(), n);
  return y;
}
}  // namespace

TEST_CASE("q8_0 hand-built block", "[math][quant]") {
  unsigned char b[34] = {};
  put_f16(b, 0.5f);  // f16 0x3800
  const int q[32] = {-127, -64, -1, 0, 1, 2, 3, 64, 127, -128, 10, -10, 5, -5, 100, -100,
                     7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
  for (int i = 0; i < 32; ++i) b[2 + i] = static_cast<unsigned char>(static_cast<std::int8_t>(q[i]));
  const float expect[32] = {-63.5f, -32.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f, 32.0f, 63.5f, -64.0f, 5.0f, -5.0f, 2.5f, -2.5f, 50.0f, -50.0f,
                            3.5f, 4.0f, 4.5f, 5.5f, 6.0f, 6.5f, 7.0f, 7.5f, 8.0f, 8.5f, 9.0f, 9.5f, 10.0f, 10.5f, 11.0f, 11.5f};
  const auto y = dequant(gf::tensor_format::q8_0, b, 32);
  for (int i = 0; i < 32; ++i) REQUIRE(y[i] == expect[i]);
}

TEST_CASE("q5_0 hand-built block: low/high nibbles and the 5th bit", "[math][quant]") {
  unsigned char b[22] = {};
  put_f16(b, 0.25f);
  // qh: bits 0, 1, 16 and 31 set (little-endian u32 0x80010003).
  b[2] = 0x03; b[3] = 0x00; b[4] = 0x01; b[5] = 0x80;
  // qs[j] = low nibble j, high nibble 15 - j: weight j = j (+16 if its qh bit), weight j+16 = 15-j (+16).
  for (int j = 0; j < 16; ++j) b[6 + j] = static_cast<unsigned char>(j | ((15 - j) << 4));
  // Expected: w = 0.25 * (q - 16)
  const float expect[32] = {
      0.0f /* 0+16-16 */, 0.25f /* 1+16-16 */, -3.5f, -3.25f, -3.0f, -2.75f, -2.5f, -2.25f,
      -2.0f, -1.75f, -1.5f, -1.25f, -1.0f, -0.75f, -0.5f, -0.25f,
      3.75f /* 15+16-16 */, -0.5f /* 14-16 */, -0.75f, -1.0f, -1.25f, -1.5f, -1.75f, -2.0f,
      -2.25f, -2.5f, -2.75f, -3.0f, -3.25f, -3.5f, -3.75f, 0.0f /* 0+16-16 */};
  const auto y = dequant(gf::tensor_format::q5_0, b, 32);
  for (int i = 0; i < 32; ++i) {
    INFO("i " << i);
    REQUIRE(y[i] == expect[i]);
  }
}

TEST_CASE("q4_k hand-built block: 6-bit packed scales and mins", "[math][quant]") {
  unsigned char b[144] = {};
  put_f16(b, 1.0f);     // d
  put_f16(b + 2, 0.5f); // dmin
  // Sub-block scales sc = {1, 2, 63, 4, 5, 48, 7, 33}, mins m = {0, 2, 4, 63, 8, 10, 40, 14}.
  const int sc[8] = {1, 2, 63, 4, 5, 48, 7, 33}, m[8] = {0, 2, 4, 63, 8, 10, 40, 14};
  unsigned char* s = b + 4;
  for (int k = 0; k < 4; ++k) {
    s[k] = static_cast<unsigned char>((sc[k] & 63) | ((sc[k + 4] >> 4) << 6));
    s[k + 4] = static_cast<unsigned char>((m[k] & 63) | ((m[k + 4] >> 4) << 6));
    s[k + 8] = static_cast<unsigned char>((sc[k + 4] & 0xF) | ((m[k + 4] & 0xF) << 4));
  }
  // The packing above, spelled out (so a packing mistake in the test cannot cancel one in the code):
  const unsigned char packed[12] = {1, 2 | (3 << 6), 63, 4 | (2 << 6), 0, 2, 4 | (2 << 6), 63, 5 | (8 << 4), 0 | (10 << 4), 7 | (8 << 4), 1 | (14 << 4)};
  for (int i = 0; i < 12; ++i) REQUIRE(s[i] == packed[i]);
  // qs: chunk j byte l = (l % 16) | ((15 - l % 16) << 4): sub-block 2j gets q = l%16, 2j+1 gets 15 - l%16.
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 32; ++l) b[16 + 32 * j + l] = static_cast<unsigned char>((l % 16) | ((15 - l % 16) << 4));
  const auto y = dequant(gf::tensor_format::q4_k, b, 256);
  // w = d*sc*q - dmin*m; a few values written out, then all by the same rule.
  REQUIRE(y[0] == 0.0f);                  // sub-block 0: 1*1*0 - 0.5*0
  REQUIRE(y[5] == 5.0f);                  // 1*1*5
  REQUIRE(y[32] == 15.0f * 2 - 1.0f);     // sub-block 1: q = 15, sc 2, m 2
  REQUIRE(y[64 + 3] == 63.0f * 3 - 2.0f); // sub-block 2: q = 3, sc 63, m 4
  REQUIRE(y[96] == 4.0f * 15 - 31.5f);    // sub-block 3: q = 15, sc 4, m 63
  REQUIRE(y[160 + 1] == 48.0f * 14 - 5.0f);  // sub-block 5: q = 14, sc 48, m 10
  REQUIRE(y[224 + 31] == 33.0f * 0 - 7.0f);  // sub-block 7: q = 15 - 15, sc 33, m 14
  for (int k = 0; k < 8; ++k)
    for (int l = 0; l < 32; ++l) {
      const int q = k % 2 ? 15 - l % 16 : l % 16;
      REQUIRE(y[32 * k + l] == float(sc[k]) * float(q) - 0.5f * float(m[k]));
    }
}

TEST_CASE("q6_k hand-built block: ql/qh interleave and signed 8-bit scales", "[math][quant]") {
  unsigned char b[210] = {};
  // Weight e: n = e/128, r = e%128, c = r/32, l = r%32; 6-bit q = nibble of ql[64n + 32(c&1) + l]
  // (low for c < 2, high for c >= 2) | ((qh[32n + l] >> 2c) & 3) << 4; w = d * sc[e/16] * (q - 32).
  // Choose q(e) = (e * 7 + 3) % 64 and encode it.
  auto qof = [](int e) { return (e * 7 + 3) % 64; };
  for (int e = 0; e < 256; ++e) {
    const int n = e / 128, r = e % 128, c = r / 32, l = r % 32, q = qof(e);
    unsigned char& lo = b[64 * n + 32 * (c & 1) + l];
    lo = static_cast<unsigned char>(c < 2 ? (lo & 0xF0) | (q & 15) : (lo & 0x0F) | ((q & 15) << 4));
    b[128 + 32 * n + l] = static_cast<unsigned char>(b[128 + 32 * n + l] | ((q >> 4) << (2 * c)));
  }
  const int sc[16] = {1, -1, 2, -2, 127, -128, 3, 5, 7, 11, 13, -17, 19, 23, -29, 31};
  for (int i = 0; i < 16; ++i) b[192 + i] = static_cast<unsigned char>(static_cast<std::int8_t>(sc[i]));
  put_f16(b + 208, 0.125f);
  const auto y = dequant(gf::tensor_format::q6_k, b, 256);
  REQUIRE(y[0] == 0.125f * 1 * (3 - 32));           // q(0) = 3
  REQUIRE(y[17] == 0.125f * -1 * (58 - 32));        // q(17) = 122 % 64 = 58, sc[1] = -1
  REQUIRE(y[80] == 0.125f * -128 * (51 - 32));      // q(80) = 563 % 64 = 51, sc[5]
  REQUIRE(y[255] == 0.125f * 31 * (60 - 32));       // q(255) = 1788 % 64 = 60
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 16;
    REQUIRE(y[e] == 0.125f * float(sc[sub]) * float(qof(e) - 32));
  }
}

TEST_CASE("real Gemma 3 270M blocks equal gguf-py's dequantization bit for bit", "[math][quant]") {
  auto check = [](gf::tensor_format f, const auto& bytes, const auto& values) {
    INFO("format " << gf::to_string(f));
    const int n = int(sizeof(values) / sizeof(float));
    const auto y = dequant(f, bytes, n);
    for (int i = 0; i < n; ++i) REQUIRE(gf_test::same_bits(y[i], values[i]));
  };
  check(gf::tensor_format::q8_0, gf_fixture::q8_0_bytes, gf_fixture::q8_0_values);
  check(gf::tensor_format::q5_0, gf_fixture::q5_0_bytes, gf_fixture::q5_0_values);
  check(gf::tensor_format::q4_k, gf_fixture::q4_k_bytes, gf_fixture::q4_k_values);
  check(gf::tensor_format::q6_k, gf_fixture::q6_k_bytes, gf_fixture::q6_k_values);
}

TEST_CASE("dequantize_row: plain dtypes and the independent test dequantizer agree", "[math][quant]") {
  for (gf::tensor_format f : gf::all_tensor_formats) {
    const int cols = gf::block_elems(f) == 256 ? 512 : 96;
    const auto w = gf_test::random_weight(f, 3, cols, 5u);
    for (int r = 0; r < 3; ++r) {
      std::vector<float> y(static_cast<std::size_t>(cols));
      gm::dequantize_row(f, w.view.row(r), y.data(), cols);
      const auto ref = gf_test::ref_dequant_row(f, w.view.row(r), cols);
      for (int c = 0; c < cols; ++c) REQUIRE(double(y[c]) == ref[c]);  // exact: products of few bits
    }
  }
}
