#pragma once
// AVX-512 (+VNNI) matmul kernels. Canonical orders (math/quant.hpp, math/reduce.hpp) are kept
// lane for lane, so results equal the scalar and AVX2 kernels bit for bit:
//   exact path: one zmm accumulator per (row, token) holds the 16 lanes c % 16.
//   int8 path : one zmm per (row, token) holds two activation blocks' 8 lanes (even block in
//               lanes 0-7, odd in 8-15); the integer dot of a block pair is one vpdpbusd started
//               from the zero-point correction, so the int32 lanes are the exact signed sums.
// Tiles: NR weight rows x NT tokens share their loads (a weight block is decoded once per NT
// tokens, an activation block loaded once per NR rows).
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <gemmaforge/backend/cpu/act_quant.hpp>
#include <gemmaforge/backend/cpu/matmul_task.hpp>
#include <gemmaforge/backend/cpu/simd.hpp>
#include <gemmaforge/math/quant.hpp>

#if GF_X86
namespace gemmaforge::cpu::detail::avx512 {

using math::block_q4_k;
using math::block_q5_0;
using math::block_q6_k;
using math::block_q8_0;

// [float(a) x 8, float(b) x 8]
GF_AVX512_FN __m512 f16_pair_lanes(std::uint16_t a, std::uint16_t b) {
  const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(int(std::uint32_t(a) | (std::uint32_t(b) << 16))));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm512_castps128_ps512(f));
}

GF_AVX512_FN float f16_scalar(f16 h) { return _cvtsh_ss(h.bits); }

GF_AVX512_FN std::uint32_t load_u32(const void* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 5-bit codes (0..31) of two consecutive q5_0 blocks: bytes 0-31 block 0, 32-63 block 1.
GF_AVX512_FN __m512i q5_0_codes_pair(const block_q5_0* b) {
  const __m256i qs = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs)));
  __m512i z = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), _mm512_castsi256_si512(qs));
  const long long s4 = 0x0004000400040004ll;
  z = _mm512_srlv_epi16(z, _mm512_setr_epi64(0, 0, s4, s4, 0, 0, s4, s4));
  z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
  const std::uint64_t h = std::uint64_t(load_u32(b[0].qh)) | (std::uint64_t(load_u32(b[1].qh)) << 32);
  return _mm512_mask_add_epi8(z, _cvtu64_mask64(h), z, _mm512_set1_epi8(0x10));
}

GF_AVX512_FN __m256i q5_0_codes(const block_q5_0* b) {
  const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
  const __m256i z = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), _mm256_set1_epi8(0x0F));
  return _mm256_mask_add_epi8(z, _cvtu32_mask32(load_u32(b->qh)), z, _mm256_set1_epi8(0x10));
}

// q4_k: [d*sc_0..7, dmin*m_0..7]
GF_AVX512_FN __m512 q4_k_scales(const block_q4_k* b) {
  const std::uint32_t u0 = load_u32(b->scales), u1 = load_u32(b->scales + 4), u2 = load_u32(b->scales + 8);
  const std::uint32_t sc_lo = u0 & 0x3f3f3f3fu;
  const std::uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
  const std::uint32_t m_lo = u1 & 0x3f3f3f3fu;
  const std::uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
  const __m128i packed = _mm_setr_epi32(int(sc_lo), int(sc_hi), int(m_lo), int(m_hi));
  const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(packed));
  return _mm512_mul_ps(v, f16_pair_lanes(b->d.bits, b->dmin.bits));
}

// q4_k chunk j (64 weights): low nibbles of qs[32j..] (sub-block 2j) then high nibbles (2j+1).
// (A broadcast load with one masked 512-bit shift measured 4% slower on Zen 4 than this.)
GF_AVX512_FN __m512i q4_k_codes(const block_q4_k* b, int j) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * j));
  const __m256i m = _mm256_set1_epi8(0x0F);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m)), _mm256_and_si256(_mm256_srli_epi16(q, 4), m), 1);
}

// q6_k half n (128 weights) -> codes of chunk 2n (w0) and 2n+1 (w1), 0..63. Per byte, with
// ha = [qh, qh >> 2]: w0 = (ql & 15) | (ha & 3) << 4 and w1 = ql >> 4 | (ha & 0x30). Each is one
// 16-bit shift, one bit select (vpternlogd: bits 0-3 from the low part, 4-7 from the high) and one
// mask to 6 bits; bits a 16-bit shift carries across a byte boundary land only in bits the select
// or the mask drop.
GF_AVX512_FN void q6_k_codes(const block_q6_k* b, int n, __m512i& w0, __m512i& w1) {
  const __m512i ql = _mm512_loadu_si512(b->ql + 64 * n);
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * n));
  const __m512i ha = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
  const __m512i m4 = _mm512_set1_epi8(0x0F), m6 = _mm512_set1_epi8(0x3F);
  // 0xE4 = (A & C) | (B & ~C): A's bits where the select C is 1, B's elsewhere.
  w0 = _mm512_and_si512(_mm512_ternarylogic_epi32(ql, _mm512_slli_epi16(ha, 4), m4, 0xE4), m6);
  w1 = _mm512_and_si512(_mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), ha, m4, 0xE4), m6);
}

// q6_k: [d*sc_0..15]
GF_AVX512_FN __m512 q6_k_scales(const block_q6_k* b) {
  const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales))));
  return _mm512_mul_ps(_mm512_set1_ps(f16_scalar(b->d)), sc);
}

// 128-bit lane i of v (the intrinsic needs an immediate; loops pass a variable).
GF_AVX512_FN __m128i lane128(__m512i v, int i) {
  switch (i) {
    case 0: return _mm512_extracti32x4_epi32(v, 0);
    case 1: return _mm512_extracti32x4_epi32(v, 1);
    case 2: return _mm512_extracti32x4_epi32(v, 2);
    default: return _mm512_extracti32x4_epi32(v, 3);
  }
}

GF_AVX512_FN __m512i lane_index(int a, int b) {  // [a x 8, b x 8]
  return _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
}
GF_AVX512_FN __m512i quad_index(int k) {  // [4k x 4, 4k+1 x 4, 4k+2 x 4, 4k+3 x 4]
  const int a = 4 * k;
  return _mm512_setr_epi32(a, a, a, a, a + 1, a + 1, a + 1, a + 1, a + 2, a + 2, a + 2, a + 2, a + 3, a + 3, a + 3, a + 3);
}

// One (row, token) accumulator step of the int8 path for a block pair:
//   acc = fma(float(dpbusd(corr, w, x)) * dxv, wscale, acc)
// 15-bit activations (W): two passes over the digits, s = 128 * dot(w, q1) + dot(w, q2) + corr.
template <bool W>
GF_AVX512_FN __m512 i8_step(__m512 acc, __m512i corr, __m512i w, __m512i x1, __m512i x2, __m512 dxv, __m512 ws) {
  __m512i s;
  if constexpr (W) s = _mm512_add_epi32(_mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x1), 7), _mm512_dpbusd_epi32(corr, w, x2));
  else { (void)x2; s = _mm512_dpbusd_epi32(corr, w, x1); }
  const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(s), dxv);
  return _mm512_fmadd_ps(f, ws, acc);
}

// The same step without a zero-point correction (q4_k's codes are unsigned, its min is a
// separate term). 15-bit: the high digit's dot, shifted, is the accumulator the low digit's
// vpdpbusd starts from, one add fewer than i8_step; vpdpbusd does not saturate, so the int32 lanes
// are the same (mod 2^32) as 128 * dot(w, q1) + dot(w, q2).
template <bool W>
GF_AVX512_FN __m512 i8_step_nocorr(__m512 acc, __m512i w, __m512i x1, __m512i x2, __m512 dxv, __m512 ws) {
  __m512i s;
  if constexpr (W) s = _mm512_dpbusd_epi32(_mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x1), 7), w, x2);
  else { (void)x2; s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x1); }
  return _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), dxv), ws, acc);
}

template <bool W>
GF_AVX512_FN __m256 i8_step256(__m256 acc, __m256i corr, __m256i w, __m256i x1, __m256i x2, __m256 dxv, __m256 ws) {
  __m256i s;
  if constexpr (W) s = _mm256_add_epi32(_mm256_slli_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x1), 7), _mm256_dpbusd_epi32(corr, w, x2));
  else { (void)x2; s = _mm256_dpbusd_epi32(corr, w, x1); }
  return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), dxv), ws, acc);
}

// Second activation digit (zero when 8-bit; never read then).
GF_AVX512_FN __m512i load_q2(const act_row& a, int p) {
  return a.q2 ? _mm512_loadu_si512(a.q2 + 64 * p) : _mm512_setzero_si512();
}

// ------------------------------------------------------------------------ int8 path kernels
template <tensor_format F, bool W>
struct int8_b32 {  // q8_0, q5_0
  using blk = std::conditional_t<F == tensor_format::q8_0, block_q8_0, block_q5_0>;
  static constexpr int shift = F == tensor_format::q8_0 ? 7 : 4;  // zero point 128 (XOR trick) / 16

  template <int NR, int NT>
  GF_AVX512_FN static void tile(const mm_task& k, std::int64_t r0, int t0) {
    const int nb = k.cols / 32;
    const blk* wr[NR];
    for (int r = 0; r < NR; ++r) wr[r] = reinterpret_cast<const blk*>(k.wrow(r0 + r));
    act_row A[NT];
    for (int t = 0; t < NT; ++t) A[t] = act_row_at(k.act, k.L, t0 + t);
    __m512 acc[NR][NT];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    tile_prefetch pf(k, r0, NR, nb / 2, t0 == 0);
    int p = 0;
    for (; 2 * p + 1 < nb; ++p) {
      pf.step();
      __m512i wq[NR];
      __m512 ws[NR];
      for (int r = 0; r < NR; ++r) {
        const blk* b = wr[r] + 2 * p;
        if constexpr (F == tensor_format::q8_0) {
          const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs))),
                                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1);
          wq[r] = _mm512_xor_si512(w, flip);
        } else {
          wq[r] = q5_0_codes_pair(b);
        }
        ws[r] = f16_pair_lanes(b[0].d.bits, b[1].d.bits);
      }
      for (int t = 0; t < NT; ++t) {
        const __m512i xq = _mm512_loadu_si512(A[t].q + 64 * p);
        const __m512i xq2 = W ? load_q2(A[t], p) : xq;
        const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(A[t].nsum4 + 16 * p), shift);
        const __m512 dxv = _mm512_loadu_ps(A[t].dxv + 16 * p);
        for (int r = 0; r < NR; ++r) acc[r][t] = i8_step<W>(acc[r][t], corr, wq[r], xq, xq2, dxv, ws[r]);
      }
    }
    if (nb & 1) {  // last block, even index: lanes 0-7 only
      const int b = nb - 1;
      for (int r = 0; r < NR; ++r) {
        const blk* bp = wr[r] + b;
        __m256i w;
        if constexpr (F == tensor_format::q8_0) {
          w = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp->qs)), _mm256_set1_epi8(char(0x80)));
        } else {
          w = q5_0_codes(bp);
        }
        const __m512 ws = _mm512_set1_ps(f16_scalar(bp->d));
        for (int t = 0; t < NT; ++t) {
          const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].q + 32 * b));
          const __m256i xq2 = W ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].q2 + 32 * b)) : xq;
          const __m256i corr = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].nsum4 + 8 * b)), shift);
          // lanes 0-7 only: acc' = fma(f, ws, acc) there, computed in 256 bits and merged
          const __m256 lo = i8_step256<W>(_mm512_castps512_ps256(acc[r][t]), corr, w, xq, xq2, _mm256_loadu_ps(A[t].dxv + 8 * b),
                                          _mm512_castps512_ps256(ws));
          acc[r][t] = _mm512_insertf32x8(acc[r][t], lo, 0);
        }
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) k.out(t0 + t, r0 + r) = simd::tree16(acc[r][t]);
  }
};

template <bool W>
struct int8_q4_k {
  template <int NR, int NT>
  GF_AVX512_FN static void tile(const mm_task& k, std::int64_t r0, int t0) {
    const int nB = k.cols / 256;
    const block_q4_k* wr[NR];
    for (int r = 0; r < NR; ++r) wr[r] = reinterpret_cast<const block_q4_k*>(k.wrow(r0 + r));
    act_row A[NT];
    for (int t = 0; t < NT; ++t) A[t] = act_row_at(k.act, k.L, t0 + t);
    __m512 acc[NR][NT];
    __m256 macc[NR][NT];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) { acc[r][t] = _mm512_setzero_ps(); macc[r][t] = _mm256_setzero_ps(); }
    tile_prefetch pf(k, r0, NR, nB, t0 == 0);
    for (int B = 0; B < nB; ++B) {
      pf.step();
      __m512 sc[NR];
      for (int r = 0; r < NR; ++r) sc[r] = q4_k_scales(wr[r] + B);
      for (int t = 0; t < NT; ++t) {
        const __m256 xs = _mm256_loadu_ps(A[t].xsum + 8 * B);
        for (int r = 0; r < NR; ++r) macc[r][t] = _mm256_fmadd_ps(_mm512_extractf32x8_ps(sc[r], 1), xs, macc[r][t]);
      }
      for (int j = 0; j < 4; ++j) {
        const int p = 4 * B + j;
        __m512i wq[NR];
        __m512 ws[NR];
        for (int r = 0; r < NR; ++r) {
          wq[r] = q4_k_codes(wr[r] + B, j);
          ws[r] = _mm512_permutexvar_ps(lane_index(2 * j, 2 * j + 1), sc[r]);
        }
        for (int t = 0; t < NT; ++t) {
          const __m512i xq = _mm512_loadu_si512(A[t].q + 64 * p);
          const __m512i xq2 = W ? load_q2(A[t], p) : xq;
          const __m512 dxv = _mm512_loadu_ps(A[t].dxv + 16 * p);
          for (int r = 0; r < NR; ++r) acc[r][t] = i8_step_nocorr<W>(acc[r][t], wq[r], xq, xq2, dxv, ws[r]);
        }
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) k.out(t0 + t, r0 + r) = simd::tree16(acc[r][t]) - simd::tree8_512(macc[r][t]);
  }
};

template <bool W>
struct int8_q6_k {
  template <int NR, int NT>
  GF_AVX512_FN static void tile(const mm_task& k, std::int64_t r0, int t0) {
    const int nB = k.cols / 256;
    const block_q6_k* wr[NR];
    for (int r = 0; r < NR; ++r) wr[r] = reinterpret_cast<const block_q6_k*>(k.wrow(r0 + r));
    act_row A[NT];
    for (int t = 0; t < NT; ++t) A[t] = act_row_at(k.act, k.L, t0 + t);
    __m512 acc[NR][NT];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
    tile_prefetch pf(k, r0, NR, nB, t0 == 0);
    for (int B = 0; B < nB; ++B) {
      pf.step();
      __m512 sc[NR];
      for (int r = 0; r < NR; ++r) sc[r] = q6_k_scales(wr[r] + B);
      for (int n = 0; n < 2; ++n) {
        __m512i w0[NR], w1[NR];
        for (int r = 0; r < NR; ++r) q6_k_codes(wr[r] + B, n, w0[r], w1[r]);
        for (int h = 0; h < 2; ++h) {
          const int c = 2 * n + h, p = 4 * B + c;
          __m512 ws[NR];
          for (int r = 0; r < NR; ++r) ws[r] = _mm512_permutexvar_ps(quad_index(c), sc[r]);
          for (int t = 0; t < NT; ++t) {
            const __m512i xq = _mm512_loadu_si512(A[t].q + 64 * p);
            const __m512i xq2 = W ? load_q2(A[t], p) : xq;
            const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512(A[t].nsum4 + 16 * p), 5);
            const __m512 dxv = _mm512_loadu_ps(A[t].dxv + 16 * p);
            for (int r = 0; r < NR; ++r) acc[r][t] = i8_step<W>(acc[r][t], corr, h ? w1[r] : w0[r], xq, xq2, dxv, ws[r]);
          }
        }
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) k.out(t0 + t, r0 + r) = simd::tree16(acc[r][t]);
  }
};

// ------------------------------------------------------------------------ exact path kernels
// Dequantize n weights (n a multiple of the block size, <= 256) starting at block pointer src.
template <tensor_format F>
GF_AVX512_FN void dequant(const std::byte* src, float* dst, int n) {
  if constexpr (F == tensor_format::q8_0) {
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(src);
    for (int i = 0; i < n / 32; ++i) {
      const __m512 d = _mm512_set1_ps(f16_scalar(b[i].d));
      for (int h = 0; h < 2; ++h) {
        const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs + 16 * h)));
        _mm512_store_ps(dst + 32 * i + 16 * h, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q)));
      }
    }
  } else if constexpr (F == tensor_format::q5_0) {
    const block_q5_0* b = reinterpret_cast<const block_q5_0*>(src);
    for (int i = 0; i < n / 32; ++i) {
      const __m512 d = _mm512_set1_ps(f16_scalar(b[i].d));
      const __m256i q = _mm256_sub_epi8(q5_0_codes(b + i), _mm256_set1_epi8(16));
      _mm512_store_ps(dst + 32 * i, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)))));
      _mm512_store_ps(dst + 32 * i + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)))));
    }
  } else if constexpr (F == tensor_format::q4_k) {
    const block_q4_k* b = reinterpret_cast<const block_q4_k*>(src);
    const __m512 sc = q4_k_scales(b);
    for (int j = 0; j < 4; ++j) {
      const __m512i codes = q4_k_codes(b, j);
      for (int s = 0; s < 2; ++s) {
        const __m512 dl = _mm512_permutexvar_ps(_mm512_set1_epi32(2 * j + s), sc);
        const __m512 ml = _mm512_permutexvar_ps(_mm512_set1_epi32(8 + 2 * j + s), sc);
        for (int h = 0; h < 2; ++h) {
          const __m128i q8 = lane128(codes, 2 * s + h);
          const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q8));
          // dl * q is exact, so the fused form rounds once, like the canonical dl*q - ml.
          _mm512_store_ps(dst + 64 * j + 32 * s + 16 * h, _mm512_fmsub_ps(dl, q, ml));
        }
      }
    }
  } else if constexpr (F == tensor_format::q6_k) {
    const block_q6_k* b = reinterpret_cast<const block_q6_k*>(src);
    const __m512 sc = q6_k_scales(b);
    for (int n2 = 0; n2 < 2; ++n2) {
      __m512i w[2];
      q6_k_codes(b, n2, w[0], w[1]);
      for (int h = 0; h < 2; ++h) {
        const __m512i q = _mm512_sub_epi8(w[h], _mm512_set1_epi8(32));
        const int c = 2 * n2 + h;
        for (int s = 0; s < 4; ++s) {
          const __m512 d = _mm512_permutexvar_ps(_mm512_set1_epi32(4 * c + s), sc);
          const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lane128(q, s)));
          _mm512_store_ps(dst + 64 * c + 16 * s, _mm512_mul_ps(d, qf));
        }
      }
    }
  }
}

template <tensor_format F>
GF_AVX512_FN __m512 load_plain16(const std::byte* row, int c) {
  if constexpr (F == tensor_format::f32) return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + c);
  else if constexpr (F == tensor_format::f16) return simd::load16_f16(reinterpret_cast<const std::uint16_t*>(row) + c);
  else return simd::load16_bf16(reinterpret_cast<const std::uint16_t*>(row) + c);
}

template <tensor_format F>
struct exact_k {
  static constexpr bool plain = F == tensor_format::f32 || F == tensor_format::f16 || F == tensor_format::bf16;

  template <int NR, int NT>
  GF_AVX512_FN static void tile(const mm_task& k, std::int64_t r0, int t0) {
    const std::byte* wr[NR];
    for (int r = 0; r < NR; ++r) wr[r] = k.wrow(r0 + r);
    const float* xt[NT];
    for (int t = 0; t < NT; ++t) xt[t] = k.x + std::int64_t(t0 + t) * k.cols;
    __m512 acc[NR][NT];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
    if constexpr (plain) {
      tile_prefetch pf(k, r0, NR, k.cols / 16, t0 == 0);
      for (int c = 0; c < k.cols; c += 16) {
        pf.step();
        __m512 xv[NT];
        for (int t = 0; t < NT; ++t) xv[t] = _mm512_loadu_ps(xt[t] + c);
        for (int r = 0; r < NR; ++r) {
          const __m512 w = load_plain16<F>(wr[r], c);
          for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_fmadd_ps(w, xv[t], acc[r][t]);
        }
      }
    } else if constexpr (F == tensor_format::q8_0) {
      // Dequantize in registers (d * q is exact) instead of through the buffer: the LM head of
      // the Q4_K_M files is Q8_0, the largest matrix of a decode step.
      const int nb = k.cols / 32;
      tile_prefetch pf(k, r0, NR, nb, t0 == 0);
      for (int b = 0; b < nb; ++b) {
        pf.step();
        __m512 d[NR];
        for (int r = 0; r < NR; ++r) d[r] = _mm512_set1_ps(f16_scalar(reinterpret_cast<const block_q8_0*>(wr[r])[b].d));
        for (int h = 0; h < 2; ++h) {
          __m512 xv[NT];
          for (int t = 0; t < NT; ++t) xv[t] = _mm512_loadu_ps(xt[t] + 32 * b + 16 * h);
          for (int r = 0; r < NR; ++r) {
            const std::int8_t* qs = reinterpret_cast<const block_q8_0*>(wr[r])[b].qs + 16 * h;
            const __m512 w = _mm512_mul_ps(d[r], _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)))));
            for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_fmadd_ps(w, xv[t], acc[r][t]);
          }
        }
      }
    } else {
      alignas(64) float buf[NR][256];
      constexpr int be = int(block_elems(F)), bb = int(block_bytes(F));
      tile_prefetch pf(k, r0, NR, (k.cols + 255) / 256, t0 == 0);
      for (int c0 = 0; c0 < k.cols; c0 += 256) {
        pf.step();
        const int n = k.cols - c0 < 256 ? k.cols - c0 : 256;
        for (int r = 0; r < NR; ++r) dequant<F>(wr[r] + std::size_t(c0 / be) * bb, buf[r], n);
        for (int c = 0; c < n; c += 16) {
          __m512 xv[NT];
          for (int t = 0; t < NT; ++t) xv[t] = _mm512_loadu_ps(xt[t] + c0 + c);
          for (int r = 0; r < NR; ++r) {
            const __m512 w = _mm512_load_ps(buf[r] + c);
            for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_fmadd_ps(w, xv[t], acc[r][t]);
          }
        }
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) k.out(t0 + t, r0 + r) = simd::tree16(acc[r][t]);
  }
};

}  // namespace gemmaforge::cpu::detail::avx512
#endif
