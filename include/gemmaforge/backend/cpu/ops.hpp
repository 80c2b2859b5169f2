#pragma once
// Row-wise and element-wise operations of the forward pass on the CPU. Each has a scalar version
// that is the math/ formula and SIMD versions that reproduce it bit for bit (tested), so results
// depend neither on the ISA nor on the batch. Work is threaded over rows/elements when large
// enough to pay for a pool call (~2-5 us); small calls run on the calling thread.
//
//   rmsnorm(pool, x, gain, y, rows, cols, eps)          y = x * rsqrt(mean(x^2) + eps) * gain
//       (also QK-norm: rows = tokens * heads, cols = head_dim, gain = the [head_dim] q/k gain)
//   rope_inv_freq_table(inv, head_dim, theta, factor)     HF's inv_freq (math/rope.hpp); or
//   rope_inv_freq_table<Model::rope>(inv, head_dim, kind) from the descriptor
//   rope_table(pool, inv, head_dim, positions, T, cos, sin)  cos/sin [T][head_dim / 2]; compute once
//       per step and layer kind, reuse for every layer of that kind
//   rope(pool, x, T, heads, head_dim, cos, sin)           x [T][heads][head_dim] in place
//   geglu(pool, gate, up, n)                              gate[i] = gelu_tanh(gate[i]) * up[i]
//   add(pool, y, x, n)                                    y += x (residual)
//   softcap(pool, x, n, cap)                              x = cap * tanh(x / cap)
//   embed(pool, E, ids, T, out, scale)                    out[t] = dequant(E[ids[t]]) * scale
//   argmax(x, n)                                          first index of the largest value (NaN skipped)
//   log_sum_exp(x, n)                                     log(sum exp(x)), math/log_sum_exp.hpp's order
#include <cmath>
#include <cstdint>
#include <limits>

#include <gemmaforge/backend/cpu/cpu_features.hpp>
#include <gemmaforge/backend/cpu/simd.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>
#include <gemmaforge/core/tensor.hpp>
#include <gemmaforge/math/activation.hpp>
#include <gemmaforge/math/log_sum_exp.hpp>
#include <gemmaforge/math/norm.hpp>
#include <gemmaforge/math/quant.hpp>
#include <gemmaforge/math/reduce.hpp>
#include <gemmaforge/math/rope.hpp>
#include <gemmaforge/math/softcap.hpp>
#include <gemmaforge/model/layer_pattern.hpp>

namespace gemmaforge::cpu {

namespace detail {

// Run f(begin, end) over [0, n) on the pool when n * cost_per_item is worth a pool call.
// cost units ~ 1 ns; below ~20 us of work the call is not worth waking workers for.
template <class F>
inline void for_range(thread_pool& pool, std::int64_t n, double cost_per_item, F&& f) {
  if (n <= 0) return;
  if (pool.size() == 1 || double(n) * cost_per_item < 20000.0) {
    f(std::int64_t(0), n);
    return;
  }
  pool.parallel_for(n, f);
}

// ----------------------------------------------------------------------------- rmsnorm row
inline float rms_inv_from_lanes(float* lane, const float* x, int done, int n, float eps) {
  for (int i = done; i < n; ++i) lane[i % 16] = fmaf(x[i], x[i], lane[i % 16]);
  const float mean = math::tree_sum16(lane) / float(n);
  return 1.0f / sqrtf(mean + eps);
}

#if GF_X86
GF_AVX512_FN void rmsnorm_row_avx512(const float* x, const float* g, float* y, int n, float eps) {
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    acc = _mm512_fmadd_ps(v, v, acc);
  }
  alignas(64) float lane[16];
  _mm512_store_ps(lane, acc);
  const float r = rms_inv_from_lanes(lane, x, i, n, eps);
  const __m512 vr = _mm512_set1_ps(r);
  int j = 0;
  for (; j + 16 <= n; j += 16)
    _mm512_storeu_ps(y + j, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + j), vr), _mm512_loadu_ps(g + j)));
  for (; j < n; ++j) y[j] = (x[j] * r) * g[j];
}

GF_AVX2_FN void rmsnorm_row_avx2(const float* x, const float* g, float* y, int n, float eps) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    lo = _mm256_fmadd_ps(a, a, lo);
    hi = _mm256_fmadd_ps(b, b, hi);
  }
  alignas(32) float lane[16];
  _mm256_store_ps(lane, lo);
  _mm256_store_ps(lane + 8, hi);
  const float r = rms_inv_from_lanes(lane, x, i, n, eps);
  const __m256 vr = _mm256_set1_ps(r);
  int j = 0;
  for (; j + 8 <= n; j += 8)
    _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), vr), _mm256_loadu_ps(g + j)));
  for (; j < n; ++j) y[j] = (x[j] * r) * g[j];
}

// ------------------------------------------------------------------------------------ rope
GF_AVX512_FN void rope_head_avx512(float* x, const float* c, const float* s, int half) {
  int i = 0;
  for (; i + 16 <= half; i += 16) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + half);
    const __m512 cv = _mm512_loadu_ps(c + i), sv = _mm512_loadu_ps(s + i);
    _mm512_storeu_ps(x + i, _mm512_sub_ps(_mm512_mul_ps(a, cv), _mm512_mul_ps(b, sv)));
    _mm512_storeu_ps(x + i + half, _mm512_add_ps(_mm512_mul_ps(b, cv), _mm512_mul_ps(a, sv)));
  }
  for (; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * c[i] - b * s[i];
    x[i + half] = b * c[i] + a * s[i];
  }
}

GF_AVX2_FN void rope_head_avx2(float* x, const float* c, const float* s, int half) {
  int i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + half);
    const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
    _mm256_storeu_ps(x + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
    _mm256_storeu_ps(x + i + half, _mm256_add_ps(_mm256_mul_ps(b, cv), _mm256_mul_ps(a, sv)));
  }
  for (; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * c[i] - b * s[i];
    x[i + half] = b * c[i] + a * s[i];
  }
}

// ------------------------------------------------------------------------- element-wise
GF_AVX512_FN void geglu_avx512(float* gate, const float* up, std::int64_t b, std::int64_t e) {
  std::int64_t i = b;
  for (; i + 16 <= e; i += 16)
    _mm512_storeu_ps(gate + i, _mm512_mul_ps(simd::gelu16(_mm512_loadu_ps(gate + i)), _mm512_loadu_ps(up + i)));
  for (; i < e; ++i) gate[i] = math::geglu(gate[i], up[i]);
}
GF_AVX2_FN void geglu_avx2(float* gate, const float* up, std::int64_t b, std::int64_t e) {
  std::int64_t i = b;
  for (; i + 8 <= e; i += 8)
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(simd::gelu8(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
  for (; i < e; ++i) gate[i] = math::geglu(gate[i], up[i]);
}
GF_AVX512_FN void softcap_avx512(float* x, float cap, std::int64_t b, std::int64_t e) {
  std::int64_t i = b;
  for (; i + 16 <= e; i += 16) _mm512_storeu_ps(x + i, simd::softcap16(_mm512_loadu_ps(x + i), cap));
  for (; i < e; ++i) x[i] = math::softcap_exp(x[i], cap);
}
GF_AVX2_FN void softcap_avx2(float* x, float cap, std::int64_t b, std::int64_t e) {
  std::int64_t i = b;
  for (; i + 8 <= e; i += 8) _mm256_storeu_ps(x + i, simd::softcap8(_mm256_loadu_ps(x + i), cap));
  for (; i < e; ++i) x[i] = math::softcap_exp(x[i], cap);
}

GF_AVX512_FN std::int64_t argmax_avx512(const float* x, std::int64_t n) {
  __m512 best = _mm512_set1_ps(-INFINITY);
  __m512i best_i = _mm512_setzero_si512();
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  const std::int64_t nv = n & ~std::int64_t(15);
  // Lane-wise strict '>' keeps each lane's first maximum; NaN compares false and is skipped.
  for (std::int64_t i = 0; i < nv; i += 16) {  // n < 2^31 (32-bit lane indices): the caller checks
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, gt, v);
    best_i = _mm512_mask_mov_epi32(best_i, gt, idx);
    idx = _mm512_add_epi32(idx, step);
  }
  alignas(64) float bv[16];
  alignas(64) std::int32_t bi[16];
  _mm512_store_ps(bv, best);
  _mm512_store_si512(bi, best_i);
  float m = -INFINITY;
  std::int64_t at = 0;
  for (int l = 0; l < 16; ++l)
    if (bv[l] > m || (bv[l] == m && bi[l] < at)) { m = bv[l]; at = bi[l]; }
  for (std::int64_t k = nv; k < n; ++k)
    if (x[k] > m) { m = x[k]; at = k; }
  return at;
}

// math::log_sum_exp's order: the main loop fills the 16 double lanes (lanes 0-7 and 8-15 in two
// registers), the tail (< 16 elements) goes on in scalar code, then the same tree.
GF_AVX512_FN double log_sum_exp_avx512(const float* x, std::int64_t n) {
  const std::int64_t nv = n & ~std::int64_t(15);
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (std::int64_t i = 0; i < nv; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
  float m = _mm512_reduce_max_ps(mv);
  for (std::int64_t i = nv; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (!std::isfinite(m)) return double(m);
  const __m512 mm = _mm512_set1_ps(m);
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (std::int64_t i = 0; i < nv; i += 16) {
    const __m512 e = simd::exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mm));
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  alignas(64) double lane[16];
  _mm512_store_pd(lane, lo);
  _mm512_store_pd(lane + 8, hi);
  for (std::int64_t i = nv; i < n; ++i) lane[i % 16] += double(math::exp_f32(x[i] - m));
  return double(m) + std::log(math::tree_sum16(lane));
}

GF_AVX2_FN double log_sum_exp_avx2(const float* x, std::int64_t n) {
  const std::int64_t nv = n & ~std::int64_t(15);
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
  for (std::int64_t i = 0; i < nv; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  alignas(32) float mx[16];
  _mm256_store_ps(mx, m0);
  _mm256_store_ps(mx + 8, m1);
  float m = -INFINITY;
  for (float v : mx) m = v > m ? v : m;
  for (std::int64_t i = nv; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (!std::isfinite(m)) return double(m);
  const __m256 mm = _mm256_set1_ps(m);
  __m256d s[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  for (std::int64_t i = 0; i < nv; i += 16) {
    const __m256 e0 = simd::exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm));
    const __m256 e1 = simd::exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mm));
    s[0] = _mm256_add_pd(s[0], _mm256_cvtps_pd(_mm256_castps256_ps128(e0)));
    s[1] = _mm256_add_pd(s[1], _mm256_cvtps_pd(_mm256_extractf128_ps(e0, 1)));
    s[2] = _mm256_add_pd(s[2], _mm256_cvtps_pd(_mm256_castps256_ps128(e1)));
    s[3] = _mm256_add_pd(s[3], _mm256_cvtps_pd(_mm256_extractf128_ps(e1, 1)));
  }
  alignas(32) double lane[16];
  for (int q = 0; q < 4; ++q) _mm256_store_pd(lane + 4 * q, s[q]);
  for (std::int64_t i = nv; i < n; ++i) lane[i % 16] += double(math::exp_f32(x[i] - m));
  return double(m) + std::log(math::tree_sum16(lane));
}
#endif

}  // namespace detail

// ------------------------------------------------------------------------------- rmsnorm
// In place (y == x) is fine. gain: [cols], the bound g = 1 + w.
inline void rmsnorm(thread_pool& pool, const float* x, const float* gain, float* y, std::int64_t rows, int cols, float eps,
                    cpu_isa isa = default_cpu_isa()) {
  isa = clamp_cpu_isa(isa);
  detail::for_range(pool, rows, double(cols) * 0.3, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
#if GF_X86
      if (isa == cpu_isa::avx512) { detail::rmsnorm_row_avx512(xr, gain, yr, cols, eps); continue; }
      if (isa == cpu_isa::avx2) { detail::rmsnorm_row_avx2(xr, gain, yr, cols, eps); continue; }
#endif
      math::rmsnorm_row(xr, gain, yr, cols, eps);
    }
  });
}

// ----------------------------------------------------------------------------------- rope
inline void rope_inv_freq_table(float* inv_freq, int head_dim, float theta, float linear_factor = 1.0f) {
  for (int i = 0; i < head_dim / 2; ++i) inv_freq[i] = math::rope_inv_freq(i, head_dim, theta, linear_factor);
}

// The same from a model's rope_params (Model::rope) for one layer kind: theta of that kind, and
// the linear scaling factor on global layers (Gemma 3 4B+: 8).
template <class Rope>
inline void rope_inv_freq_table(float* inv_freq, int head_dim, layer_kind kind) {
  const float factor = kind == layer_kind::global ? float(Rope::global_linear_scale) : 1.0f;
  rope_inv_freq_table(inv_freq, head_dim, float(Rope::theta(kind)), factor);
}

// cos/sin [T][head_dim / 2] for the positions of T tokens.
inline void rope_table(thread_pool& pool, const float* inv_freq, int head_dim, const std::int32_t* positions, int T,
                       float* cos_out, float* sin_out) {
  const int half = head_dim / 2;
  detail::for_range(pool, T, double(half) * 40.0, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t)
      math::rope_cos_sin(positions[t], inv_freq, half, cos_out + t * half, sin_out + t * half);
  });
}

// x [T][heads][head_dim], rotated in place with the token's row of the cos/sin tables.
inline void rope(thread_pool& pool, float* x, int T, int heads, int head_dim, const float* cos_t, const float* sin_t,
                 cpu_isa isa = default_cpu_isa()) {
  isa = clamp_cpu_isa(isa);
  const int half = head_dim / 2;
  detail::for_range(pool, std::int64_t(T) * heads, double(head_dim) * 0.5, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const std::int64_t t = i / heads;
      float* v = x + i * head_dim;
      const float* c = cos_t + t * half;
      const float* s = sin_t + t * half;
#if GF_X86
      if (isa == cpu_isa::avx512) { detail::rope_head_avx512(v, c, s, half); continue; }
      if (isa == cpu_isa::avx2) { detail::rope_head_avx2(v, c, s, half); continue; }
#endif
      math::rope_apply(v, c, s, head_dim);
    }
  });
}

// ------------------------------------------------------------------------- element-wise
inline void geglu(thread_pool& pool, float* gate, const float* up, std::int64_t n, cpu_isa isa = default_cpu_isa()) {
  isa = clamp_cpu_isa(isa);
  detail::for_range(pool, n, 1.0, [&](std::int64_t b, std::int64_t e) {
#if GF_X86
    if (isa == cpu_isa::avx512) return detail::geglu_avx512(gate, up, b, e);
    if (isa == cpu_isa::avx2) return detail::geglu_avx2(gate, up, b, e);
#endif
    for (std::int64_t i = b; i < e; ++i) gate[i] = math::geglu(gate[i], up[i]);
  });
}

inline void add(thread_pool& pool, float* y, const float* x, std::int64_t n) {
  detail::for_range(pool, n, 0.1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) y[i] += x[i];
  });
}

inline void softcap(thread_pool& pool, float* x, std::int64_t n, float cap, cpu_isa isa = default_cpu_isa()) {
  isa = clamp_cpu_isa(isa);
  detail::for_range(pool, n, 1.0, [&](std::int64_t b, std::int64_t e) {
#if GF_X86
    if (isa == cpu_isa::avx512) return detail::softcap_avx512(x, cap, b, e);
    if (isa == cpu_isa::avx2) return detail::softcap_avx2(x, cap, b, e);
#endif
    for (std::int64_t i = b; i < e; ++i) x[i] = math::softcap_exp(x[i], cap);
  });
}

// out[t][0..E.cols) = dequantize(E.row(ids[t])) * scale. Ids must be in [0, E.rows).
inline void embed(thread_pool& pool, const weight_view& E, const std::int32_t* ids, int T, float* out, float scale) {
  detail::for_range(pool, T, double(E.cols) * 1.0, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) {
      float* o = out + t * E.cols;
      math::dequantize_row(E.format, E.row(ids[t]), o, E.cols);
      for (std::int64_t c = 0; c < E.cols; ++c) o[c] = o[c] * scale;
    }
  });
}

// First index of the largest value; NaNs are skipped; 0 when nothing compares (all NaN / -inf).
inline std::int64_t argmax(const float* x, std::int64_t n, cpu_isa isa = default_cpu_isa()) {
  isa = clamp_cpu_isa(isa);
#if GF_X86
  if (isa == cpu_isa::avx512 && n < (std::int64_t(1) << 31)) return detail::argmax_avx512(x, n);
#endif
  (void)isa;
  float m = -INFINITY;
  std::int64_t at = 0;
  for (std::int64_t i = 0; i < n; ++i)
    if (x[i] > m) { m = x[i]; at = i; }
  return at;
}

// log(sum_i exp(x_i)) in math::log_sum_exp's order (same bits on every ISA): perplexity's
// normalizer over a vocabulary row (runtime/logprobs.hpp keeps its own: the scheduler includes no
// backend).
inline double log_sum_exp(const float* x, std::int64_t n, cpu_isa isa = default_cpu_isa()) {
  isa = clamp_cpu_isa(isa);
#if GF_X86
  if (isa == cpu_isa::avx512) return detail::log_sum_exp_avx512(x, n);
  if (isa == cpu_isa::avx2) return detail::log_sum_exp_avx2(x, n);
#endif
  (void)isa;
  return math::log_sum_exp(x, n);
}

}  // namespace gemmaforge::cpu
