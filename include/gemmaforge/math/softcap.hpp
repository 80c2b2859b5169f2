#pragma once
// Soft-capping (Gemma 2 attention logits, cap 50, and final logits, cap 30): cap * tanh(x / cap).
// softcap() is the reference with tanhf. softcap_exp() is the schedule form the CPU (scalar and
// SIMD, bit-identical) and CUDA compute, through the portable exp:
//   z = x / cap; e = exp_f32(-2|z|); t = (1 - e) / (1 + e); y = cap * copysign(t, z).
// For |z| -> 0 the (1 - e) cancellation costs relative accuracy of t but not absolute accuracy
// of the logit (error < cap * 2^-23); the tests bound it.
#include <cmath>

#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/exp.hpp>

namespace gemmaforge::math {

GF_HOST_DEVICE float softcap(float x, float cap) { return cap * tanhf(x / cap); }

GF_HOST_DEVICE float softcap_exp(float x, float cap) {
  const float z = x / cap;
  const float e = exp_f32(-2.0f * fabsf(z));
  const float t = (1.0f - e) / (1.0f + e);
  return cap * copysignf(t, z);
}

}  // namespace gemmaforge::math
