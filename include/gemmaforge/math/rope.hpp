#pragma once
// Rotary position embedding, NEOX / rotate_half layout: element i of a head is paired with
// element i + d/2 (HF's rotate_half; GGUF Gemma files carry no Q/K permutation).
//
// Frequencies exactly as HF computes them in f32 (Gemma3RotaryEmbedding):
//   inv_freq[i] = 1.0 / (base ** (arange(0, d, 2).float() / d))        every step f32
//   linear scaling ("linear", Gemma 3 4B+ global layers): inv_freq /= factor
//   freqs = position.float() * inv_freq;  cos/sin of freqs in f32
// Here: the exponent is the same f32 quotient; base**e is computed in double and rounded once to
// f32 (correctly rounded in practice; torch's vectorised powf agrees on every entry for d = 256
// and bases 1e4/1e6 except 10^3.46875, where torch returns the neighbour 1 ulp away); the
// reciprocal and the factor division are f32 like HF. cos/sin are computed in double and rounded
// (correctly rounded; torch's f32 cos/sin are within 1 ulp of it and differ on ~5% of angles).
// Dividing inv_freq by the factor equals dividing positions by it when the factor is a power of 2
// (8 for Gemma 3): both are exact exponent shifts.
//
// Rotation of a pair (a = x[i], b = x[i + d/2]) as HF writes it, (q * cos) + (rotate_half(q) * sin):
//   x[i] = a*c - b*s,  x[i + d/2] = b*c + a*s      (each product rounded, then added: no fma)
#include <cmath>

#include <gemmaforge/core/macros.hpp>

namespace gemmaforge::math {

GF_HOST_DEVICE float rope_inv_freq(int i, int head_dim, float base, float linear_factor = 1.0f) {
  const float e = float(2 * i) / float(head_dim);
  const float p = float(pow(double(base), double(e)));
  float inv = 1.0f / p;
  if (linear_factor != 1.0f) inv = inv / linear_factor;
  return inv;
}

// cos/sin of position `pos` for all head_dim/2 frequencies.
GF_HOST_DEVICE void rope_cos_sin(int pos, const float* inv_freq, int half, float* cos_out, float* sin_out) {
  const float p = float(pos);
  for (int i = 0; i < half; ++i) {
    const float angle = p * inv_freq[i];
    cos_out[i] = float(cos(double(angle)));
    sin_out[i] = float(sin(double(angle)));
  }
}

// Rotate one head vector x[head_dim] in place.
GF_HOST_DEVICE void rope_apply(float* x, const float* cos_v, const float* sin_v, int head_dim) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    const float c = cos_v[i], s = sin_v[i];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

}  // namespace gemmaforge::math
