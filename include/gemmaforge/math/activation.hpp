#pragma once
// GeGLU activation of Gemma's MLP: down(gelu_tanh(gate(x)) * up(x)).
//
// gelu_tanh is HF's gelu_pytorch_tanh, i.e. torch's gelu(approximate="tanh") kernel, step by step:
//   inner = sqrt(2/pi) * (x + 0.044715 * x^3);  y = 0.5 * x * (1 + tanh(inner)).
// gelu_tanh_exp is the same function rewritten with 1 + tanh(u) = 2 / (1 + e^(-2u)):
//   y = x / (1 + exp_f32(-2 * inner)),
// which has no cancellation for large negative x, needs only the portable exp, and is what the
// CPU schedules (scalar and SIMD, bit-identical) and CUDA compute. It differs from the tanh form
// by a few ulp (tests/unit/math_scalar_test.cpp measures it).
#include <cmath>

#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/exp.hpp>

namespace gemmaforge::math {

namespace gelu_detail {
inline constexpr float beta = 0.7978845608028654f;  // sqrt(2 / pi), torch's M_SQRT2 * M_2_SQRTPI * 0.5
inline constexpr float kappa = 0.044715f;
}  // namespace gelu_detail

// Reference: torch's formula with tanhf.
GF_HOST_DEVICE float gelu_tanh(float x) {
  using namespace gelu_detail;
  const float x_cube = x * x * x;
  const float inner = beta * (x + kappa * x_cube);
  return 0.5f * x * (1.0f + tanhf(inner));
}

// Schedule form. Steps (each exactly rounded, no fusion):
//   x3 = (x * x) * x; t = kappa * x3; u = x + t; inner = beta * u; e = exp_f32(-2 * inner);
//   y = x / (1 + e)
GF_HOST_DEVICE float gelu_tanh_exp(float x) {
  using namespace gelu_detail;
  const float x2 = x * x;
  const float x3 = x2 * x;
  const float t = kappa * x3;
  const float u = x + t;
  const float inner = beta * u;
  const float e = exp_f32(-2.0f * inner);
  return x / (1.0f + e);
}

// GeGLU of one element: gelu(gate) * up.
GF_HOST_DEVICE float geglu(float gate, float up) { return gelu_tanh_exp(gate) * up; }

}  // namespace gemmaforge::math
