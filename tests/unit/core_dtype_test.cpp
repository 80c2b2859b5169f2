// bf16 / f16 / fp8 e4m3 conversions: exhaustive round trips, known rounding cases, and an
// independent oracle (the CPU's F16C instruction for f16, exact double arithmetic for the others).
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cpu/cpu_features.hpp>
#include <gemmaforge/core/dtype.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace gf = gemmaforge;

namespace {
float from_bits(std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// Reference rounding of a finite float to a format with `mant_bits` fraction bits, minimum normal
// exponent `emin`, by exact double arithmetic (doubles hold every product here exactly).
double round_ref(double v, int mant_bits, int emin) {
  if (v == 0) return v;
  const double a = std::fabs(v);
  int e = std::ilogb(a);
  if (e < emin) e = emin;  // subnormal range shares the min-normal quantum
  const double quantum = std::ldexp(1.0, e - mant_bits);
  double q = a / quantum;
  double fl = std::floor(q);
  const double rem = q - fl;
  if (rem > 0.5 || (rem == 0.5 && std::fmod(fl, 2.0) != 0)) fl += 1;
  return std::copysign(fl * quantum, v);
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) std::uint16_t hw_f16(float f) {
  return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
#endif
}  // namespace

TEST_CASE("bf16: all 65536 bit patterns round-trip through float", "[cpu][dtype]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto v = gf::bf16::from_bits(std::uint16_t(b));
    const float f = gf::to_float(v);
    REQUIRE(gf::to_bf16(f).bits == b);
  }
}

TEST_CASE("f16: all 65536 bit patterns round-trip through float", "[cpu][dtype]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto v = gf::f16::from_bits(std::uint16_t(b));
    const float f = gf::to_float(v);
    REQUIRE(gf::to_f16(f).bits == b);
  }
}

TEST_CASE("fp8 e4m3: all 256 bit patterns round-trip through float", "[cpu][dtype]") {
  for (std::uint32_t b = 0; b < 256; ++b) {
    const auto v = gf::fp8_e4m3::from_bits(std::uint8_t(b));
    const float f = gf::to_float(v);
    if ((b & 0x7f) == 0x7f) {
      REQUIRE(std::isnan(f));
      REQUIRE((gf::to_fp8_e4m3(f).bits & 0x7f) == 0x7f);
    } else {
      REQUIRE(gf::to_fp8_e4m3(f).bits == b);
    }
  }
  // Decoded values of a few codes (OCP spec table).
  CHECK(gf::to_float(gf::fp8_e4m3::from_bits(0x7e)) == 448.0f);
  CHECK(gf::to_float(gf::fp8_e4m3::from_bits(0x01)) == std::ldexp(1.0f, -9));
  CHECK(gf::to_float(gf::fp8_e4m3::from_bits(0x08)) == std::ldexp(1.0f, -6));
  CHECK(gf::to_float(gf::fp8_e4m3::from_bits(0xb8)) == -1.0f);
}

TEST_CASE("bf16: known rounding cases", "[cpu][dtype]") {
  CHECK(gf::to_bf16(1.0f).bits == 0x3f80);
  CHECK(gf::to_bf16(from_bits(0x3f808000)).bits == 0x3f80);  // tie -> even (down)
  CHECK(gf::to_bf16(from_bits(0x3f818000)).bits == 0x3f82);  // tie -> even (up)
  CHECK(gf::to_bf16(from_bits(0x3f808001)).bits == 0x3f81);  // just above the tie
  CHECK(gf::to_bf16(-2.0f).bits == 0xc000);
  CHECK(gf::to_bf16(std::numeric_limits<float>::infinity()).bits == 0x7f80);
  CHECK(gf::to_bf16(-std::numeric_limits<float>::infinity()).bits == 0xff80);
  CHECK(gf::to_bf16(std::numeric_limits<float>::max()).bits == 0x7f80);  // rounds to Inf
  CHECK(std::isnan(gf::to_float(gf::to_bf16(std::nanf("")))));
  CHECK(std::isnan(gf::to_float(gf::to_bf16(from_bits(0x7f800001)))));  // payload only in low bits
  CHECK(gf::to_bf16(from_bits(0x00000001)).bits == 0x0000);            // tiny subnormal
  // Embedding scales the reference rounds to bf16 (reference table): sqrt(hidden).
  CHECK(gf::round_to(gf::dtype::bf16, std::sqrt(640.0f)) == 25.25f);
  CHECK(gf::round_to(gf::dtype::bf16, std::sqrt(2048.0f)) == 45.25f);
  CHECK(gf::round_to(gf::dtype::bf16, std::sqrt(3072.0f)) == 55.5f);
  CHECK(gf::round_to(gf::dtype::bf16, std::sqrt(3584.0f)) == 59.75f);
  CHECK(gf::round_to(gf::dtype::bf16, std::sqrt(1152.0f)) == 34.0f);
}

TEST_CASE("f16: known rounding cases", "[cpu][dtype]") {
  CHECK(gf::to_f16(1.0f).bits == 0x3c00);
  CHECK(gf::to_f16(65504.0f).bits == 0x7bff);
  CHECK(gf::to_f16(65519.0f).bits == 0x7bff);
  CHECK(gf::to_f16(65520.0f).bits == 0x7c00);  // tie at the top rounds to even = Inf
  CHECK(gf::to_f16(std::ldexp(1.0f, -14)).bits == 0x0400);
  CHECK(gf::to_f16(std::ldexp(1.0f, -24)).bits == 0x0001);
  CHECK(gf::to_f16(std::ldexp(1.0f, -25)).bits == 0x0000);          // tie -> even (0)
  CHECK(gf::to_f16(std::ldexp(1.5f, -25)).bits == 0x0001);
  CHECK(gf::to_f16(std::ldexp(3.0f, -25)).bits == 0x0002);          // 1.5 quanta tie -> 2
  CHECK(gf::to_f16(1.0f + std::ldexp(1.0f, -11)).bits == 0x3c00);   // tie -> even (down)
  CHECK(gf::to_f16(1.0f + std::ldexp(3.0f, -11)).bits == 0x3c02);   // tie -> even (up)
  CHECK(gf::to_f16(0.1f).bits == 0x2e66);
  CHECK(gf::to_f16(-std::numeric_limits<float>::infinity()).bits == 0xfc00);
  CHECK(std::isnan(gf::to_float(gf::to_f16(std::nanf("")))));
  CHECK(gf::to_f16(-0.0f).bits == 0x8000);
}

TEST_CASE("fp8 e4m3: known rounding and saturation cases", "[cpu][dtype]") {
  CHECK(gf::to_fp8_e4m3(1.0f).bits == 0x38);
  CHECK(gf::to_fp8_e4m3(1.0625f).bits == 0x38);  // tie -> even
  CHECK(gf::to_fp8_e4m3(1.1875f).bits == 0x3a);  // tie -> even (up)
  CHECK(gf::to_fp8_e4m3(240.0f).bits == 0x77);
  CHECK(gf::to_fp8_e4m3(448.0f).bits == 0x7e);
  CHECK(gf::to_fp8_e4m3(460.0f).bits == 0x7e);
  CHECK(gf::to_fp8_e4m3(1e6f).bits == 0x7e);   // satfinite
  CHECK(gf::to_fp8_e4m3(-1e6f).bits == 0xfe);
  CHECK(gf::to_fp8_e4m3(std::numeric_limits<float>::infinity()).bits == 0x7e);
  CHECK((gf::to_fp8_e4m3(std::nanf("")).bits & 0x7f) == 0x7f);
  CHECK(gf::to_fp8_e4m3(std::ldexp(1.0f, -9)).bits == 0x01);
  CHECK(gf::to_fp8_e4m3(std::ldexp(1.0f, -10)).bits == 0x00);  // tie -> even (0)
  CHECK(gf::to_fp8_e4m3(std::ldexp(1.5f, -10)).bits == 0x01);
  CHECK(gf::to_fp8_e4m3(std::ldexp(1.5f, -9)).bits == 0x02);   // tie -> even (2)
  CHECK(gf::to_fp8_e4m3(std::ldexp(1.0f, -6)).bits == 0x08);
  CHECK(gf::to_fp8_e4m3(-0.0f).bits == 0x80);
}

TEST_CASE("f32 -> low precision agrees with independent rounding on random floats", "[cpu][dtype]") {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  int checked_f16_hw = 0;
  for (int i = 0; i < 400000; ++i) {
    // Random bit patterns cover every exponent; scale into each format's range half of the time.
    float f = from_bits(any_bits(rng));
    if (!std::isfinite(f)) continue;
    if (i % 2) { int e2 = 0; f = std::ldexp(std::frexp(f, &e2), int(rng() % 40) - 28); }
    // bf16: 7 fraction bits, emin -126 (f32 subnormals are representable as bf16 subnormals).
    const double rb = round_ref(f, 7, -126);
    if (std::fabs(rb) < 3.3e38) REQUIRE(gf::to_float(gf::to_bf16(f)) == float(rb));
    // f16: 10 fraction bits, emin -14, overflow to Inf at >= 65520.
    const double rh = round_ref(f, 10, -14);
    const float got_h = gf::to_float(gf::to_f16(f));
    if (std::fabs(rh) <= 65504.0) REQUIRE(got_h == float(rh));
    else REQUIRE(std::isinf(got_h));
#if defined(__x86_64__)
    if (gemmaforge::cpu::host_cpu_features().f16c) {
      REQUIRE(gf::to_f16(f).bits == hw_f16(f));
      ++checked_f16_hw;
    }
#endif
    // fp8 e4m3: 3 fraction bits, emin -6, saturating at 448.
    const double r8 = round_ref(f, 3, -6);
    const float got_8 = gf::to_float(gf::to_fp8_e4m3(f));
    REQUIRE(got_8 == float(std::fabs(r8) > 448.0 ? std::copysign(448.0, r8) : r8));
  }
  INFO("f16 values checked against F16C hardware: " << checked_f16_hw);
  SUCCEED();
}
