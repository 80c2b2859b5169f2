#pragma once
// AVX2 + FMA + F16C matmul kernels (x86-64-v3). The canonical 16 lanes of each (row, token) live
// in two ymm registers: lanes 0-7 and 8-15 for the exact path (columns c % 16 < 8 and >= 8), even
// and odd activation blocks for the int8 path. Results equal the scalar and AVX-512 kernels bit
// for bit. Without VNNI the int8 dot is maddubs (u8 x s8 pairs to i16) + madd (pairs to i32):
// q8_0 uses |w| and sign(w)*x so that no pair sum exceeds 2*128*127 < 2^15 (no saturation); the
// unsigned q5_0/q4_k/q6_k codes (<= 63) never come close.
#include <cstdint>
#include <cstring>

#include <gemmaforge/backend/cpu/act_quant.hpp>
#include <gemmaforge/backend/cpu/matmul_task.hpp>
#include <gemmaforge/backend/cpu/simd.hpp>
#include <gemmaforge/math/quant.hpp>

#if GF_X86
namespace gemmaforge::cpu::detail::avx2 {

using math::block_q4_k;
using math::block_q5_0;
using math::block_q6_k;
using math::block_q8_0;

GF_AVX2_FN float f16_scalar(f16 h) { return _cvtsh_ss(h.bits); }

GF_AVX2_FN std::uint32_t load_u32(const void* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

GF_AVX2_FN __m256i q5_0_codes(const block_q5_0* b) {
  const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
  const __m256i z = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), _mm256_set1_epi8(0x0F));
  // Spread the 32 bits of qh to bytes: byte i takes byte i/8 of qh and tests bit i%8.
  const __m256i v = _mm256_set1_epi32(int(load_u32(b->qh)));
  const __m256i spread = _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                                 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bits = _mm256_set1_epi64x(0x8040201008040201ll);
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bits), bits);
  return _mm256_or_si256(z, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
}

// Exact integer sums of 4 products: u8 codes x s8 activations.
GF_AVX2_FN __m256i dot4_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

GF_AVX2_FN void q4_k_scales(const block_q4_k* b, __m256& dsc, __m256& dm) {
  const std::uint32_t u0 = load_u32(b->scales), u1 = load_u32(b->scales + 4), u2 = load_u32(b->scales + 8);
  const std::uint32_t sc_lo = u0 & 0x3f3f3f3fu;
  const std::uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
  const std::uint32_t m_lo = u1 & 0x3f3f3f3fu;
  const std::uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
  const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32(int(sc_lo), int(sc_hi), 0, 0)));
  const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_setr_epi32(int(m_lo), int(m_hi), 0, 0)));
  dsc = _mm256_mul_ps(sc, _mm256_set1_ps(f16_scalar(b->d)));
  dm = _mm256_mul_ps(m, _mm256_set1_ps(f16_scalar(b->dmin)));
}

// q4_k sub-block k (0..7) codes, 0..15.
GF_AVX2_FN __m256i q4_k_codes(const block_q4_k* b, int k) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs + 32 * (k / 2)));
  return _mm256_and_si256(k & 1 ? _mm256_srli_epi16(q, 4) : q, _mm256_set1_epi8(0x0F));
}

// q6_k sub-block k (0..7, 32 weights) codes, 0..63.
GF_AVX2_FN __m256i q6_k_codes(const block_q6_k* b, int k) {
  const int n = k / 4, c = k % 4;
  const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * n + 32 * (c & 1)));
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * n));
  const __m256i lo = _mm256_and_si256(c >> 1 ? _mm256_srli_epi16(ql, 4) : ql, _mm256_set1_epi8(0x0F));
  const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c)), _mm256_set1_epi8(0x03));
  return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

GF_AVX2_FN void q6_k_scales(const block_q6_k* b, __m256& lo, __m256& hi) {
  const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
  const __m256 d = _mm256_set1_ps(f16_scalar(b->d));
  lo = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(s)));
  hi = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(s, 8))));
}

GF_AVX2_FN __m256 i8_step(__m256 acc, __m256i s, __m256 dxv, __m256 ws) {
  return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), dxv), ws, acc);
}

// ------------------------------------------------------------------------ int8 path kernels
template <tensor_format F, bool W>
struct int8_k {
  template <int NR, int NT>
  GF_AVX2_FN static void tile(const mm_task& k, std::int64_t r0, int t0) {
    act_row A[NT];
    for (int t = 0; t < NT; ++t) A[t] = act_row_at(k.act, k.L, t0 + t);
    __m256 acc[NR][NT][2];
    __m256 macc[NR][NT];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) {
        acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
        macc[r][t] = _mm256_setzero_ps();
      }
    const int nb = k.cols / 32;
    if constexpr (F == tensor_format::q8_0 || F == tensor_format::q5_0) {
      using blk = std::conditional_t<F == tensor_format::q8_0, block_q8_0, block_q5_0>;
      const blk* wr[NR];
      for (int r = 0; r < NR; ++r) wr[r] = reinterpret_cast<const blk*>(k.wrow(r0 + r));
      tile_prefetch pf(k, r0, NR, nb, t0 == 0);
      for (int b = 0; b < nb; ++b) {
        pf.step();
        __m256i wq[NR];
        __m256 ws[NR];
        for (int r = 0; r < NR; ++r) {
          if constexpr (F == tensor_format::q8_0) wq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr[r][b].qs));
          else wq[r] = q5_0_codes(wr[r] + b);
          ws[r] = _mm256_set1_ps(f16_scalar(wr[r][b].d));
        }
        for (int t = 0; t < NT; ++t) {
          const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].q + 32 * b));
          const __m256i xq2 = W ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].q2 + 32 * b)) : xq;
          const __m256 dxv = _mm256_loadu_ps(A[t].dxv + 8 * b);
          __m256i corr = _mm256_setzero_si256();
          if constexpr (F == tensor_format::q5_0)
            corr = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].nsum4 + 8 * b)), 4);
          for (int r = 0; r < NR; ++r) {
            __m256i s;
            if constexpr (F == tensor_format::q8_0) {
              const __m256i aw = _mm256_abs_epi8(wq[r]);
              s = dot4_u8s8(aw, _mm256_sign_epi8(xq, wq[r]));
              if constexpr (W) s = _mm256_add_epi32(_mm256_slli_epi32(s, 7), dot4_u8s8(aw, _mm256_sign_epi8(xq2, wq[r])));
            } else {
              s = dot4_u8s8(wq[r], xq);
              if constexpr (W) s = _mm256_add_epi32(_mm256_slli_epi32(s, 7), dot4_u8s8(wq[r], xq2));
              s = _mm256_add_epi32(s, corr);
            }
            acc[r][t][b & 1] = i8_step(acc[r][t][b & 1], s, dxv, ws[r]);
          }
        }
      }
    } else {
      using blk = std::conditional_t<F == tensor_format::q4_k, block_q4_k, block_q6_k>;
      const blk* wr[NR];
      for (int r = 0; r < NR; ++r) wr[r] = reinterpret_cast<const blk*>(k.wrow(r0 + r));
      tile_prefetch pf(k, r0, NR, nb / 8, t0 == 0);
      for (int B = 0; B < nb / 8; ++B) {
        pf.step();
        __m256 s0[NR], s1[NR];  // q4_k: d*sc, dmin*m; q6_k: d*sc[0..7], d*sc[8..15]
        for (int r = 0; r < NR; ++r) {
          if constexpr (F == tensor_format::q4_k) q4_k_scales(wr[r] + B, s0[r], s1[r]);
          else q6_k_scales(wr[r] + B, s0[r], s1[r]);
        }
        if constexpr (F == tensor_format::q4_k) {
          for (int t = 0; t < NT; ++t) {
            const __m256 xs = _mm256_loadu_ps(A[t].xsum + 8 * B);
            for (int r = 0; r < NR; ++r) macc[r][t] = _mm256_fmadd_ps(s1[r], xs, macc[r][t]);
          }
        }
        for (int kk = 0; kk < 8; ++kk) {
          const int b = 8 * B + kk;
          __m256i wq[NR];
          __m256 ws[NR];
          for (int r = 0; r < NR; ++r) {
            if constexpr (F == tensor_format::q4_k) {
              wq[r] = q4_k_codes(wr[r] + B, kk);
              ws[r] = _mm256_permutevar8x32_ps(s0[r], _mm256_set1_epi32(kk));
            } else {
              wq[r] = q6_k_codes(wr[r] + B, kk);
              const int j = 2 * (kk % 4);
              ws[r] = _mm256_permutevar8x32_ps(kk < 4 ? s0[r] : s1[r], _mm256_setr_epi32(j, j, j, j, j + 1, j + 1, j + 1, j + 1));
            }
          }
          for (int t = 0; t < NT; ++t) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].q + 32 * b));
            const __m256i xq2 = W ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].q2 + 32 * b)) : xq;
            const __m256 dxv = _mm256_loadu_ps(A[t].dxv + 8 * b);
            __m256i corr = _mm256_setzero_si256();
            if constexpr (F == tensor_format::q6_k)
              corr = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(A[t].nsum4 + 8 * b)), 5);
            for (int r = 0; r < NR; ++r) {
              __m256i s = dot4_u8s8(wq[r], xq);
              if constexpr (W) s = _mm256_add_epi32(_mm256_slli_epi32(s, 7), dot4_u8s8(wq[r], xq2));
              s = _mm256_add_epi32(s, corr);
              acc[r][t][kk & 1] = i8_step(acc[r][t][kk & 1], s, dxv, ws[r]);
            }
          }
        }
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) {
        float v = simd::tree16(acc[r][t][0], acc[r][t][1]);
        if constexpr (F == tensor_format::q4_k) v = v - simd::tree8(macc[r][t]);
        k.out(t0 + t, r0 + r) = v;
      }
  }
};

// ------------------------------------------------------------------------ exact path kernels
template <tensor_format F>
GF_AVX2_FN void dequant(const std::byte* src, float* dst, int n) {
  if constexpr (F == tensor_format::q8_0) {
    const block_q8_0* b = reinterpret_cast<const block_q8_0*>(src);
    for (int i = 0; i < n / 32; ++i) {
      const __m256 d = _mm256_set1_ps(f16_scalar(b[i].d));
      for (int h = 0; h < 4; ++h) {
        const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b[i].qs + 8 * h)));
        _mm256_store_ps(dst + 32 * i + 8 * h, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
      }
    }
  } else if constexpr (F == tensor_format::q5_0) {
    const block_q5_0* b = reinterpret_cast<const block_q5_0*>(src);
    for (int i = 0; i < n / 32; ++i) {
      const __m256 d = _mm256_set1_ps(f16_scalar(b[i].d));
      alignas(32) std::int8_t codes[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes), _mm256_sub_epi8(q5_0_codes(b + i), _mm256_set1_epi8(16)));
      for (int h = 0; h < 4; ++h) {
        const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * h)));
        _mm256_store_ps(dst + 32 * i + 8 * h, _mm256_mul_ps(d, _mm256_cvtepi32_ps(q)));
      }
    }
  } else if constexpr (F == tensor_format::q4_k) {
    const block_q4_k* b = reinterpret_cast<const block_q4_k*>(src);
    __m256 dsc, dm;
    q4_k_scales(b, dsc, dm);
    for (int kk = 0; kk < 8; ++kk) {
      alignas(32) std::uint8_t codes[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes), q4_k_codes(b, kk));
      const __m256 dl = _mm256_permutevar8x32_ps(dsc, _mm256_set1_epi32(kk));
      const __m256 ml = _mm256_permutevar8x32_ps(dm, _mm256_set1_epi32(kk));
      for (int h = 0; h < 4; ++h) {
        const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * h))));
        // dl * q is exact, so the fused form rounds once, like the canonical dl*q - ml.
        _mm256_store_ps(dst + 32 * kk + 8 * h, _mm256_fmsub_ps(dl, q, ml));
      }
    }
  } else if constexpr (F == tensor_format::q6_k) {
    const block_q6_k* b = reinterpret_cast<const block_q6_k*>(src);
    alignas(32) float sc[16];
    __m256 lo, hi;
    q6_k_scales(b, lo, hi);
    _mm256_store_ps(sc, lo);
    _mm256_store_ps(sc + 8, hi);
    for (int kk = 0; kk < 8; ++kk) {
      alignas(32) std::int8_t codes[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes), _mm256_sub_epi8(q6_k_codes(b, kk), _mm256_set1_epi8(32)));
      for (int h = 0; h < 4; ++h) {
        const __m256 d = _mm256_set1_ps(sc[2 * kk + h / 2]);
        const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + 8 * h))));
        _mm256_store_ps(dst + 32 * kk + 8 * h, _mm256_mul_ps(d, q));
      }
    }
  }
}

template <tensor_format F>
GF_AVX2_FN __m256 load_plain8(const std::byte* row, int c) {
  if constexpr (F == tensor_format::f32) return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
  else if constexpr (F == tensor_format::f16) return simd::load8_f16(reinterpret_cast<const std::uint16_t*>(row) + c);
  else return simd::load8_bf16(reinterpret_cast<const std::uint16_t*>(row) + c);
}

template <tensor_format F>
struct exact_k {
  static constexpr bool plain = F == tensor_format::f32 || F == tensor_format::f16 || F == tensor_format::bf16;
  // Dequantized rows kept per 256-column step: none are needed for plain formats (one dummy row).
  static constexpr int dequant_rows(int nr) { return plain ? 1 : nr; }

  template <int NR, int NT>
  GF_AVX2_FN static void tile(const mm_task& k, std::int64_t r0, int t0) {
    const std::byte* wr[NR];
    for (int r = 0; r < NR; ++r) wr[r] = k.wrow(r0 + r);
    const float* xt[NT];
    for (int t = 0; t < NT; ++t) xt[t] = k.x + std::int64_t(t0 + t) * k.cols;
    __m256 acc[NR][NT][2];
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) acc[r][t][0] = acc[r][t][1] = _mm256_setzero_ps();
    alignas(32) float buf[dequant_rows(NR)][plain ? 8 : 256];
    constexpr int be = int(block_elems(F)), bb = int(block_bytes(F));
    tile_prefetch pf(k, r0, NR, (k.cols + 255) / 256, t0 == 0);
    for (int c0 = 0; c0 < k.cols; c0 += 256) {
      pf.step();
      const int n = k.cols - c0 < 256 ? k.cols - c0 : 256;
      if constexpr (!plain)
        for (int r = 0; r < NR; ++r) dequant<F>(wr[r] + std::size_t(c0 / be) * bb, buf[r], n);
      for (int c = 0; c < n; c += 8) {
        const int h = (c / 8) & 1;  // canonical lane half: column % 16 < 8 -> lanes 0-7
        __m256 xv[NT];
        for (int t = 0; t < NT; ++t) xv[t] = _mm256_loadu_ps(xt[t] + c0 + c);
        for (int r = 0; r < NR; ++r) {
          __m256 w;
          if constexpr (plain) w = load_plain8<F>(wr[r], c0 + c);
          else w = _mm256_load_ps(buf[r] + c);
          for (int t = 0; t < NT; ++t) acc[r][t][h] = _mm256_fmadd_ps(w, xv[t], acc[r][t][h]);
        }
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int t = 0; t < NT; ++t) k.out(t0 + t, r0 + r) = simd::tree16(acc[r][t][0], acc[r][t][1]);
  }
};

}  // namespace gemmaforge::cpu::detail::avx2
#endif
