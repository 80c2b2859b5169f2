#pragma once
// Encoding of one K or V vector (head_dim values of one token and head) into the pool's element
// type, and decoding back. Written once for host and device.
//   f32 / f16 / bf16 : plain conversion, no scale.
//   fp8_e4m3         : scale = amax / 448, x / scale rounded to e4m3 (saturating).
//   int8             : scale = amax / 127, round-half-away(x / scale), clamped to [-127, 127].
// Attention rounds the current chunk's new keys/values through the same codec before using them
// (kv_round_trip), so a token contributes identically whether it is read from the cache or from
// the chunk being processed: chunked prefill, one-token decode and batching give the same numbers.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/kv/kv_layout.hpp>

namespace gemmaforge {

template <class KvElem>
GF_HOST_DEVICE float kv_vector_scale(const float* x, int n) {
  if constexpr (!kv_has_scale<KvElem>) {
    return 1.0f;
  } else {
    float amax = 0.0f;
    for (int i = 0; i < n; ++i) amax = fmaxf(amax, fabsf(x[i]));
    const float qmax = std::is_same_v<KvElem, fp8_e4m3> ? 448.0f : 127.0f;
    return amax > 0.0f ? amax / qmax : 1.0f;
  }
}

template <class KvElem>
GF_HOST_DEVICE KvElem kv_encode(float x, float inv_scale) {
  if constexpr (std::is_same_v<KvElem, float>) {
    return x;
  } else if constexpr (std::is_same_v<KvElem, std::int8_t>) {
    float q = roundf(x * inv_scale);
    q = fminf(fmaxf(q, -127.0f), 127.0f);
    return static_cast<std::int8_t>(q);
  } else if constexpr (std::is_same_v<KvElem, fp8_e4m3>) {
    return to_fp8_e4m3(x * inv_scale);
  } else {
    return from_float<KvElem>(x);
  }
}

template <class KvElem>
GF_HOST_DEVICE float kv_decode(KvElem e, float scale) {
  if constexpr (std::is_same_v<KvElem, std::int8_t>) {
    return float(e) * scale;
  } else if constexpr (std::is_same_v<KvElem, fp8_e4m3>) {
    return to_float(e) * scale;
  } else {
    return to_float(e);
  }
}

// Encode n values; returns the scale to store (1 for unscaled types).
template <class KvElem>
GF_HOST_DEVICE float kv_encode_vector(const float* x, int n, KvElem* out) {
  const float scale = kv_vector_scale<KvElem>(x, n);
  const float inv = 1.0f / scale;
  for (int i = 0; i < n; ++i) out[i] = kv_encode<KvElem>(x[i], inv);
  return scale;
}

// x -> stored -> float, in place: what attention will see for x once it is in the cache.
template <class KvElem>
GF_HOST_DEVICE void kv_round_trip(float* x, int n) {
  if constexpr (std::is_same_v<KvElem, float>) {
    (void)x; (void)n;
  } else {
    const float scale = kv_vector_scale<KvElem>(x, n);
    const float inv = 1.0f / scale;
    for (int i = 0; i < n; ++i) x[i] = kv_decode<KvElem>(kv_encode<KvElem>(x[i], inv), scale);
  }
}

}  // namespace gemmaforge
