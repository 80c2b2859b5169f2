#pragma once
// Low-precision scalar types usable on host and device, with exact round-to-nearest-even
// conversions written once in integer arithmetic (no intrinsics), so the CPU backend, the CUDA
// kernels and the tests agree bit for bit.
//   bf16      : 1-8-7, the training dtype of every Gemma checkpoint.
//   f16       : IEEE binary16, 1-5-10 with subnormals.
//   fp8_e4m3  : OCP E4M3FN (bias 7, no infinities, NaN = S.1111.111, max 448). Conversion from f32
//               saturates finite overflow and infinities to +-448 (CUDA's __NV_SATFINITE), which is
//               what a KV cache wants: an outlier clips instead of poisoning attention with NaN.
#include <cstdint>
#include <string_view>

#include <gemmaforge/core/macros.hpp>

namespace gemmaforge {

namespace detail {

GF_HOST_DEVICE constexpr std::uint32_t f32_bits(float f) { return __builtin_bit_cast(std::uint32_t, f); }
GF_HOST_DEVICE constexpr float bits_f32(std::uint32_t u) { return __builtin_bit_cast(float, u); }

// m >> shift, rounded to nearest, ties to even. shift in [1, 31].
GF_HOST_DEVICE constexpr std::uint32_t shift_right_rne(std::uint32_t m, int shift) {
  const std::uint32_t kept = m >> shift;
  const std::uint32_t rem = m & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  return kept + ((rem > half || (rem == half && (kept & 1u))) ? 1u : 0u);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------- bf16
struct bf16 {
  std::uint16_t bits = 0;
  static GF_HOST_DEVICE constexpr bf16 from_bits(std::uint16_t b) { bf16 r; r.bits = b; return r; }
};

GF_HOST_DEVICE constexpr float to_float(bf16 v) { return detail::bits_f32(std::uint32_t(v.bits) << 16); }

GF_HOST_DEVICE constexpr bf16 to_bf16(float f) {
  const std::uint32_t x = detail::f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep sign and payload, make sure it stays a NaN
    std::uint16_t h = std::uint16_t(x >> 16);
    if ((h & 0x7f) == 0) h |= 0x40;
    return bf16::from_bits(h);
  }
  // Adding 0x7fff plus the lowest kept bit rounds to nearest-even; overflow carries into Inf.
  return bf16::from_bits(std::uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16));
}

// ----------------------------------------------------------------------------------------- f16
struct f16 {
  std::uint16_t bits = 0;
  static GF_HOST_DEVICE constexpr f16 from_bits(std::uint16_t b) { f16 r; r.bits = b; return r; }
};

GF_HOST_DEVICE constexpr float to_float(f16 v) {
  const std::uint32_t sign = std::uint32_t(v.bits & 0x8000u) << 16;
  const std::uint32_t exp = (v.bits >> 10) & 0x1fu;
  std::uint32_t mant = v.bits & 0x3ffu;
  if (exp == 0x1f) return detail::bits_f32(sign | 0x7f800000u | (mant << 13));  // Inf / NaN (payload kept)
  if (exp != 0) return detail::bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return detail::bits_f32(sign);
  // Subnormal: normalise the mantissa.
  int e = 113;
  while ((mant & 0x400u) == 0) { mant <<= 1; --e; }
  return detail::bits_f32(sign | (std::uint32_t(e) << 23) | ((mant & 0x3ffu) << 13));
}

GF_HOST_DEVICE constexpr f16 to_f16(float f) {
  std::uint32_t x = detail::f32_bits(f);
  const std::uint16_t sign = std::uint16_t((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {  // Inf or NaN
    if (x == 0x7f800000u) return f16::from_bits(sign | 0x7c00u);
    const std::uint32_t payload = (x >> 13) & 0x3ffu;
    return f16::from_bits(std::uint16_t(sign | 0x7c00u | (payload ? payload : 0x200u)));
  }
  if (x >= 0x477ff000u) return f16::from_bits(sign | 0x7c00u);  // >= 65520 rounds to Inf
  if (x >= 0x38800000u) {                                       // normal half (>= 2^-14)
    const std::uint32_t e = (x >> 23) - 112u;
    const std::uint32_t combined = (e << 23) | (x & 0x7fffffu);  // exponent:mantissa, then round 13 bits
    return f16::from_bits(std::uint16_t(sign | detail::shift_right_rne(combined, 13)));
  }
  if (x < 0x33000000u) return f16::from_bits(sign);  // < 2^-25 (and exactly 2^-25, a tie to 0)
  // Subnormal half: value / 2^-24, rounded.
  const std::uint32_t m = (x & 0x7fffffu) | 0x800000u;
  const int shift = 126 - int(x >> 23);
  return f16::from_bits(std::uint16_t(sign | detail::shift_right_rne(m, shift)));
}

// ------------------------------------------------------------------------------------ fp8 e4m3
struct fp8_e4m3 {
  std::uint8_t bits = 0;
  static GF_HOST_DEVICE constexpr fp8_e4m3 from_bits(std::uint8_t b) { fp8_e4m3 r; r.bits = b; return r; }
  static constexpr float max_finite = 448.0f;
};

GF_HOST_DEVICE constexpr float to_float(fp8_e4m3 v) {
  const std::uint32_t sign = std::uint32_t(v.bits & 0x80u) << 24;
  const std::uint32_t exp = (v.bits >> 3) & 0xfu;
  const std::uint32_t mant = v.bits & 0x7u;
  if (exp == 0xf && mant == 0x7) return detail::bits_f32(sign | 0x7fc00000u);
  if (exp != 0) return detail::bits_f32(sign | ((exp + 120u) << 23) | (mant << 20));
  // Subnormal: mant * 2^-9 (exact in f32).
  const float mag = float(mant) * (1.0f / 512.0f);
  return sign ? -mag : mag;
}

GF_HOST_DEVICE constexpr fp8_e4m3 to_fp8_e4m3(float f) {
  std::uint32_t x = detail::f32_bits(f);
  const std::uint8_t sign = std::uint8_t((x >> 24) & 0x80u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return fp8_e4m3::from_bits(sign | 0x7fu);  // NaN
  if (x >= 0x3c800000u) {                                         // normal (>= 2^-6)
    if (x >= 0x43e00000u) return fp8_e4m3::from_bits(sign | 0x7eu);  // >= 448 (and Inf): saturate
    const std::uint32_t e = (x >> 23) - 120u;
    const std::uint32_t combined = (e << 23) | (x & 0x7fffffu);
    std::uint32_t r = detail::shift_right_rne(combined, 20);
    if (r > 0x7eu) r = 0x7eu;  // rounding up past 448 saturates
    return fp8_e4m3::from_bits(std::uint8_t(sign | r));
  }
  if (x <= 0x3a800000u) return fp8_e4m3::from_bits(sign);  // <= 2^-10: rounds to zero (tie to even)
  const std::uint32_t m = (x & 0x7fffffu) | 0x800000u;
  const int shift = 141 - int(x >> 23);  // value / 2^-9
  return fp8_e4m3::from_bits(std::uint8_t(sign | detail::shift_right_rne(m, shift)));
}

// ---------------------------------------------------------------------- runtime dtype tag (KV)
// Element types of activations and of the KV cache. (Weight storage formats, including block
// quantizations, are gf::tensor_format in format.hpp.)
enum class dtype : std::uint8_t { f32, f16, bf16, fp8_e4m3, int8 };

constexpr std::uint32_t size_of(dtype t) {
  switch (t) {
    case dtype::f32: return 4;
    case dtype::f16:
    case dtype::bf16: return 2;
    case dtype::fp8_e4m3:
    case dtype::int8: return 1;
  }
  return 0;
}

constexpr std::string_view to_string(dtype t) {
  switch (t) {
    case dtype::f32: return "f32";
    case dtype::f16: return "f16";
    case dtype::bf16: return "bf16";
    case dtype::fp8_e4m3: return "fp8";
    case dtype::int8: return "int8";
  }
  return "?";
}

constexpr bool parse_dtype(std::string_view s, dtype& out) {
  for (dtype t : {dtype::f32, dtype::f16, dtype::bf16, dtype::fp8_e4m3, dtype::int8})
    if (s == to_string(t)) { out = t; return true; }
  if (s == "fp8_e4m3" || s == "e4m3") { out = dtype::fp8_e4m3; return true; }
  return false;
}

// Map a C++ element type to its tag (used by templates over KV element types).
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr dtype value = dtype::f32; };
template <> struct dtype_of<f16> { static constexpr dtype value = dtype::f16; };
template <> struct dtype_of<bf16> { static constexpr dtype value = dtype::bf16; };
template <> struct dtype_of<fp8_e4m3> { static constexpr dtype value = dtype::fp8_e4m3; };
template <> struct dtype_of<std::int8_t> { static constexpr dtype value = dtype::int8; };

// Generic element <-> float, so templates over element types read the same for every type.
GF_HOST_DEVICE constexpr float to_float(float v) { return v; }
template <class T> GF_HOST_DEVICE constexpr T from_float(float f);
template <> GF_HOST_DEVICE constexpr float from_float<float>(float f) { return f; }
template <> GF_HOST_DEVICE constexpr bf16 from_float<bf16>(float f) { return to_bf16(f); }
template <> GF_HOST_DEVICE constexpr f16 from_float<f16>(float f) { return to_f16(f); }
template <> GF_HOST_DEVICE constexpr fp8_e4m3 from_float<fp8_e4m3>(float f) { return to_fp8_e4m3(f); }

// Round a float to what a dtype can hold (used e.g. for Gemma's embedding scale, which the
// reference computes in the activation dtype: sqrt(2048) = 45.25 in bf16, not 45.2548).
GF_HOST_DEVICE constexpr float round_to(dtype t, float f) {
  switch (t) {
    case dtype::bf16: return to_float(to_bf16(f));
    case dtype::f16: return to_float(to_f16(f));
    case dtype::fp8_e4m3: return to_float(to_fp8_e4m3(f));
    default: return f;
  }
}

}  // namespace gemmaforge
