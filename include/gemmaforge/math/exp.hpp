#pragma once
// A portable f32 exponential whose every step is an exactly rounded IEEE operation (multiply,
// fmaf, rintf, integer bit construction), so the scalar code, the AVX2/AVX-512 schedules and a
// CUDA kernel that follow the same steps produce the same bits. Softmax, GeGLU and softcap use it
// instead of expf/tanhf, whose results differ between libm, SIMD libraries and CUDA.
//
// Accuracy (tests/unit/math_scalar_test.cpp): <= 2 ulp against a correctly rounded exp over
// [-87, 88]. Range: x <= -88 returns exactly 0 (2^-127 is built as the zero bit pattern), x >= 88
// saturates at e^88 (1.65e38); softmax never needs more and GeGLU/softcap are insensitive to it.
#include <cmath>
#include <cstdint>

#include <gemmaforge/core/macros.hpp>

namespace gemmaforge::math {

namespace exp_detail {
// Cody-Waite split of ln 2: ln2_hi has 12 significant bits, so n * ln2_hi is exact for |n| <= 2^11.
inline constexpr float log2e = 1.44269504088896341f;
inline constexpr float ln2_hi = 0.693145751953125f;
inline constexpr float ln2_lo = 1.428606765330187045e-06f;
// Taylor coefficients 1/k! for k = 7..2; on |r| <= ln2/2 the truncation error is < 0.1 ulp.
inline constexpr float c7 = 1.98412698e-4f;
inline constexpr float c6 = 1.38888889e-3f;
inline constexpr float c5 = 8.33333333e-3f;
inline constexpr float c4 = 4.16666667e-2f;
inline constexpr float c3 = 1.66666667e-1f;
inline constexpr float c2 = 0.5f;
inline constexpr float lo = -88.0f;
inline constexpr float hi = 88.0f;
}  // namespace exp_detail

// The steps, in the order every schedule must follow:
//   x = clamp(x, -88, 88); n = rint(x * log2e); r = fma(n, -ln2_hi, x); r = fma(n, -ln2_lo, r);
//   p = ((((((c7 r + c6) r + c5) r + c4) r + c3) r + c2) r + 1) r + 1   (Horner, all fma)
//   result = p * bits((n + 127) << 23)
GF_HOST_DEVICE float exp_f32(float x) {
  using namespace exp_detail;
  x = fminf(fmaxf(x, lo), hi);
  const float n = rintf(x * log2e);
  float r = fmaf(n, -ln2_hi, x);
  r = fmaf(n, -ln2_lo, r);
  float p = fmaf(c7, r, c6);
  p = fmaf(p, r, c5);
  p = fmaf(p, r, c4);
  p = fmaf(p, r, c3);
  p = fmaf(p, r, c2);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  const std::uint32_t bits = std::uint32_t(int(n) + 127) << 23;  // n in [-127, 127]: -127 gives +0
  return p * __builtin_bit_cast(float, bits);
}

}  // namespace gemmaforge::math
