#pragma once
// Small SIMD building blocks shared by the CPU kernels, one set per ISA, each function carrying its
// target attribute (the library is compiled without -march flags; the kernels are chosen at run
// time). Every function here reproduces a canonical scalar formula of math/ bit for bit:
//   tree16        math::tree_sum16 (lane l += l + 8, + 4, + 2, + 1)
//   exp           math::exp_f32
//   gelu, softcap math::gelu_tanh_exp, math::softcap_exp
#include <cstdint>

#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/activation.hpp>
#include <gemmaforge/math/exp.hpp>

#include <gemmaforge/backend/cpu/x86_intrin.hpp>

#define GF_AVX2_FN GF_TARGET_AVX2 inline
#define GF_AVX512_FN GF_TARGET_AVX512 inline

namespace gemmaforge::cpu::simd {

#if GF_X86
// ------------------------------------------------------------------------------------ AVX2
// A 16-lane canonical accumulator is two registers: lanes 0-7 (lo) and 8-15 (hi).
GF_AVX2_FN float tree16(__m256 lo, __m256 hi) {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

GF_AVX2_FN float tree8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

GF_AVX2_FN __m256 exp8(__m256 x) {
  using namespace math::exp_detail;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ln2_hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(ln2_lo), r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(c7), r, _mm256_set1_ps(c6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c5));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

GF_AVX2_FN __m256 gelu8(__m256 x) {
  using namespace math::gelu_detail;
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_add_ps(x, _mm256_mul_ps(_mm256_set1_ps(kappa), x3));
  const __m256 inner = _mm256_mul_ps(_mm256_set1_ps(beta), u);
  const __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), inner));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

GF_AVX2_FN __m256 softcap8(__m256 x, float cap) {
  const __m256 z = _mm256_div_ps(x, _mm256_set1_ps(cap));
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), _mm256_andnot_ps(sign, z)));
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  return _mm256_mul_ps(_mm256_set1_ps(cap), _mm256_or_ps(t, _mm256_and_ps(sign, z)));
}

// 8 bf16 / f16 -> f32 (exact).
GF_AVX2_FN __m256 load8_bf16(const void* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))), 16));
}
GF_AVX2_FN __m256 load8_f16(const void* p) { return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p))); }

// ---------------------------------------------------------------------------------- AVX-512
GF_AVX512_FN float tree16(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

GF_AVX512_FN float tree8_512(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

GF_AVX512_FN __m512 exp16(__m512 x) {
  using namespace math::exp_detail;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(log2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ln2_hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ln2_lo), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(c7), r, _mm512_set1_ps(c6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c5));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

GF_AVX512_FN __m512 gelu16(__m512 x) {
  using namespace math::gelu_detail;
  const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 u = _mm512_add_ps(x, _mm512_mul_ps(_mm512_set1_ps(kappa), x3));
  const __m512 inner = _mm512_mul_ps(_mm512_set1_ps(beta), u);
  const __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), inner));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

GF_AVX512_FN __m512 softcap16(__m512 x, float cap) {
  const __m512 z = _mm512_div_ps(x, _mm512_set1_ps(cap));
  const __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), _mm512_abs_ps(z)));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(int(0x80000000u)));
  return _mm512_mul_ps(_mm512_set1_ps(cap), _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign)));
}

GF_AVX512_FN __m512 load16_bf16(const void* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(static_cast<const __m256i*>(p))), 16));
}
GF_AVX512_FN __m512 load16_f16(const void* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }
#endif

}  // namespace gemmaforge::cpu::simd
