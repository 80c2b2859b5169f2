#pragma once
// The packed AVX-512 VNNI GEMM of the block-sums modes (matmul_precision::int16_block_sums and
// int8_block_sums: the order of math/quant.hpp dot_block_sums), for T >= gemm_min_rows rows.
//
// Packing (BLIS style, per 32-row unit): the part of the work that claims a unit expands its
// weights once into a scratch slot of its own, as two groups of 16 rows; per group and
// 32-value block b one `packed_block` record:
//   w      int8  [8][16][4]  dword j of lane r = signed weight integers 4j..4j+3 of row r
//                            (q8_0 qs, q5_0 q - 16, q4_k q, q6_k q - 32)
//   init   int32 [2][16]     -bias * (sum of the row's weight integers over the block; q6_k: over
//                            each 16-weight half): the start value that cancels the +128 bias
//                            of the activation digits: bias 129 for two digits
//                            (128 * (A1 - 128 W) + (A2 - 128 W)), 128 for one (8-bit rows)
//   sc     int32 [2][16]     q6_k: the two sub-block scales
//   ws     f32   [16]        the block's weight scale (d, or d * sc for q4_k)
//   dm     f32   [16]        q4_k: dmin * m
// Rows past the matrix are packed as zeros and never stored. The AVX-512 path packs with
// avx512::pack_group (gemm_pack_avx512.hpp: vector decode + transpose); detail::pack_group below
// is its scalar reference (the same bytes, tests/unit/cpu_gemm_block_sums_test.cpp).
// Micro-kernel: 32 rows (2 zmm) x NT tokens. Per block, per (group, token) an int32 chain
//   s = init; s += vpdpbusd(high digits) x8; s <<= 7; s += vpdpbusd(low digits) x8
// (8-bit rows: s = init; s += vpdpbusd(digits) x8: half the integer work)
// (exact mod 2^32, and the true sum fits int32), then acc = fma(cvt(s), ws * dx_b, acc): the
// float work is one cvt + one mul + one FMA per block per 16 rows per token. The activation
// dwords come from the act layout's biased qu region as embedded broadcasts; the packed unit
// (2 x nb x 896 bytes: 36 KiB at 640 columns) stays in L1/L2 for all T tokens.
// Same bits as the scalar reference for every (row, token): each lane runs exactly the scalar
// formula's operations in its order (tests/unit/cpu_gemm_block_sums_test.cpp).
#include <atomic>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <gemmaforge/backend/cpu/act_quant.hpp>
#include <gemmaforge/backend/cpu/gemm_pack_avx512.hpp>
#include <gemmaforge/backend/cpu/gemm_pack_layout.hpp>
#include <gemmaforge/backend/cpu/matmul_avx512.hpp>
#include <gemmaforge/backend/cpu/matmul_task.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>
#include <gemmaforge/backend/cpu/x86_intrin.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/math/quant.hpp>

// Full unrolling of the register-tile loops (GCC and clang; NT, 2 groups: the accumulator arrays
// become registers).
#if defined(__GNUC__)
#define GF_UNROLL_16 _Pragma("GCC unroll 16")
#else
#define GF_UNROLL_16
#endif

namespace gemmaforge::cpu {

namespace detail {

// The start value factor for activation rows of this layout: init = -bias * W (see packed_block
// above: 129 for the two digits of 15-bit rows, 128 for 8-bit rows).
constexpr int pack_bias(bool wide) { return wide ? 129 : 128; }

// Signed weight integers and scales of block b (32 weights) of one row, in packed_block's terms.
struct unpacked_block {
  std::int8_t w[32];
  std::int32_t wsum[2];  // over weights 0..15 and 16..31
  std::int32_t sc[2];
  float ws, dm;
};

inline void unpack_block(tensor_format f, const std::byte* row, int b, unpacked_block& u) {
  u.sc[0] = u.sc[1] = 0;
  u.dm = 0.0f;
  switch (f) {
    case tensor_format::q8_0: {
      const auto& blk = reinterpret_cast<const math::block_q8_0*>(row)[b];
      for (int i = 0; i < 32; ++i) u.w[i] = blk.qs[i];
      u.ws = to_float(blk.d);
      break;
    }
    case tensor_format::q5_0: {
      const auto& blk = reinterpret_cast<const math::block_q5_0*>(row)[b];
      for (int i = 0; i < 32; ++i) u.w[i] = std::int8_t(math::q5_0_quant(blk, i) - 16);
      u.ws = to_float(blk.d);
      break;
    }
    case tensor_format::q4_k: {
      const auto& blk = reinterpret_cast<const math::block_q4_k*>(row)[b / 8];
      const int k = b % 8;
      int sc, m;
      math::q4_k_scale_min(blk.scales, k, sc, m);
      for (int i = 0; i < 32; ++i) u.w[i] = std::int8_t(math::q4_k_quant(blk, 32 * k + i));
      u.ws = to_float(blk.d) * float(sc);
      u.dm = to_float(blk.dmin) * float(m);
      break;
    }
    case tensor_format::q6_k: {
      const auto& blk = reinterpret_cast<const math::block_q6_k*>(row)[b / 8];
      const int k = b % 8;
      for (int i = 0; i < 32; ++i) u.w[i] = std::int8_t(math::q6_k_quant(blk, 32 * k + i) - 32);
      u.sc[0] = blk.scales[2 * k];
      u.sc[1] = blk.scales[2 * k + 1];
      u.ws = to_float(blk.d);
      break;
    }
    default: u = unpacked_block{}; return;
  }
  u.wsum[0] = u.wsum[1] = 0;
  for (int i = 0; i < 32; ++i) u.wsum[i / 16] += u.w[i];
}

// Pack rows [r0, r0 + 16) (those < rows) of W into nb records, init = -bias * W. The scalar
// reference of avx512::pack_group (the GEMM itself runs only on AVX-512).
inline void pack_group(const mm_task& k, std::int64_t r0, packed_block* out, int bias) {
  const bool halves = k.fmt == tensor_format::q6_k;
  std::fill_n(out, k.L.nb, packed_block{});
  for (int lane = 0; lane < 16 && r0 + lane < k.rows; ++lane) {
    const std::byte* row = k.wrow(r0 + lane);
    for (int b = 0; b < k.L.nb; ++b) {
      unpacked_block u;
      unpack_block(k.fmt, row, b, u);
      packed_block& p = out[b];
      for (int j = 0; j < 8; ++j) std::memcpy(p.w[j][lane], u.w + 4 * j, 4);
      // -bias * W in int32 (|W| <= 32 * 128: no wrap)
      if (halves) {
        p.init[0][lane] = -bias * u.wsum[0];
        p.init[1][lane] = -bias * u.wsum[1];
      } else {
        p.init[0][lane] = -bias * (u.wsum[0] + u.wsum[1]);
      }
      p.sc[0][lane] = u.sc[0];
      p.sc[1][lane] = u.sc[1];
      p.ws[lane] = u.ws;
      p.dm[lane] = u.dm;
    }
  }
}

#if GF_X86
// Dwords [J0, J1) of block b for 2 groups x NT tokens: s[g][t] += high digits, <<= 7, += low
// digits (Digits 1: s[g][t] += the 8-bit digits). The weight dwords are loaded once per j for all
// NT tokens and each activation broadcast serves both groups: 2 * NT independent chains.
template <int NT, int J0, int J1, int Digits>
GF_TARGET_AVX512 GF_FORCEINLINE void bsum_chains(__m512i (&s)[2][NT], const packed_block& p0, const packed_block& p1,
                                                 const std::uint8_t* const (&qu)[NT], int b) {
  for (int digit = 0; digit < Digits; ++digit) {
    if (digit == 1) {
GF_UNROLL_16
      for (int t = 0; t < NT; ++t) {
        s[0][t] = _mm512_slli_epi32(s[0][t], 7);
        s[1][t] = _mm512_slli_epi32(s[1][t], 7);
      }
    }
GF_UNROLL_16
    for (int j = J0; j < J1; ++j) {
      const __m512i w0 = _mm512_load_si512(p0.w[j]), w1 = _mm512_load_si512(p1.w[j]);
GF_UNROLL_16
      for (int t = 0; t < NT; ++t) {
        std::int32_t a;
        std::memcpy(&a, qu[t] + 32 * Digits * b + 32 * digit + 4 * j, 4);
        const __m512i av = _mm512_set1_epi32(a);
        s[0][t] = _mm512_dpbusd_epi32(s[0][t], av, w0);
        s[1][t] = _mm512_dpbusd_epi32(s[1][t], av, w1);
      }
    }
  }
}

// 2 groups (32 rows) x NT tokens starting at token t0. F: the weight format; Digits: 2 for
// 15-bit activation rows, 1 for 8-bit.
template <tensor_format F, int NT, int Digits>
GF_TARGET_AVX512 inline void bsum_tile(const mm_task& k, const packed_block* g0, const packed_block* g1, std::int64_t r0, int t0,
                                       __mmask16 m0, __mmask16 m1) {
  constexpr bool q4 = F == tensor_format::q4_k, q6 = F == tensor_format::q6_k;
  const std::uint8_t* qu[NT];
  const float* dx[NT];
  const float* xs[NT];
  for (int t = 0; t < NT; ++t) {
    const std::byte* row = k.act + std::size_t(t0 + t) * k.L.row_bytes;
    qu[t] = reinterpret_cast<const std::uint8_t*>(row + k.L.qu);
    dx[t] = reinterpret_cast<const float*>(row + k.L.dx);
    xs[t] = reinterpret_cast<const float*>(row + k.L.xsum);
  }
  __m512 acc[2][NT], macc[2][NT];
GF_UNROLL_16
  for (int t = 0; t < NT; ++t) acc[0][t] = acc[1][t] = macc[0][t] = macc[1][t] = _mm512_setzero_ps();
  for (int b = 0; b < k.L.nb; ++b) {
    const packed_block& p0 = g0[b];
    const packed_block& p1 = g1[b];
    __m512i s[2][NT];
    if constexpr (q6) {
      __m512i lo[2][NT];
GF_UNROLL_16
      for (int t = 0; t < NT; ++t) {
        lo[0][t] = _mm512_load_si512(p0.init[0]);
        lo[1][t] = _mm512_load_si512(p1.init[0]);
      }
      bsum_chains<NT, 0, 4, Digits>(lo, p0, p1, qu, b);
GF_UNROLL_16
      for (int t = 0; t < NT; ++t) {
        s[0][t] = _mm512_mullo_epi32(lo[0][t], _mm512_load_si512(p0.sc[0]));
        s[1][t] = _mm512_mullo_epi32(lo[1][t], _mm512_load_si512(p1.sc[0]));
        lo[0][t] = _mm512_load_si512(p0.init[1]);
        lo[1][t] = _mm512_load_si512(p1.init[1]);
      }
      bsum_chains<NT, 4, 8, Digits>(lo, p0, p1, qu, b);
GF_UNROLL_16
      for (int t = 0; t < NT; ++t) {
        s[0][t] = _mm512_add_epi32(s[0][t], _mm512_mullo_epi32(lo[0][t], _mm512_load_si512(p0.sc[1])));
        s[1][t] = _mm512_add_epi32(s[1][t], _mm512_mullo_epi32(lo[1][t], _mm512_load_si512(p1.sc[1])));
      }
    } else {
GF_UNROLL_16
      for (int t = 0; t < NT; ++t) {
        s[0][t] = _mm512_load_si512(p0.init[0]);
        s[1][t] = _mm512_load_si512(p1.init[0]);
      }
      bsum_chains<NT, 0, 8, Digits>(s, p0, p1, qu, b);
    }
    const __m512 ws0 = _mm512_load_ps(p0.ws), ws1 = _mm512_load_ps(p1.ws);
GF_UNROLL_16
    for (int t = 0; t < NT; ++t) {
      const __m512 d = _mm512_set1_ps(dx[t][b]);
      acc[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[0][t]), _mm512_mul_ps(ws0, d), acc[0][t]);
      acc[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[1][t]), _mm512_mul_ps(ws1, d), acc[1][t]);
    }
    if constexpr (q4) {
      const __m512 dm0 = _mm512_load_ps(p0.dm), dm1 = _mm512_load_ps(p1.dm);
GF_UNROLL_16
      for (int t = 0; t < NT; ++t) {
        const __m512 x = _mm512_set1_ps(xs[t][b]);
        macc[0][t] = _mm512_fmadd_ps(dm0, x, macc[0][t]);
        macc[1][t] = _mm512_fmadd_ps(dm1, x, macc[1][t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) {
    float* y = &k.out(t0 + t, r0);
    const __m512 y0 = q4 ? _mm512_sub_ps(acc[0][t], macc[0][t]) : acc[0][t];
    const __m512 y1 = q4 ? _mm512_sub_ps(acc[1][t], macc[1][t]) : acc[1][t];
    _mm512_mask_storeu_ps(y, m0, y0);
    if (m1) _mm512_mask_storeu_ps(y + 16, m1, y1);
  }
}

template <tensor_format F, int Digits>
// cppcheck-suppress unusedFunction ; taken as a function pointer with explicit template arguments (pick_bsum_*), which cppcheck does not count
GF_TARGET_AVX512 inline void bsum_unit(const mm_task& k, std::int64_t r0, packed_block* slot) {
  constexpr int NT = (F == tensor_format::q8_0 || F == tensor_format::q5_0) ? 6 : 4;
  packed_block* g0 = slot;
  packed_block* g1 = slot + k.L.nb;
  avx512::pack_group<F>(k, r0, g0, pack_bias(Digits == 2));
  avx512::pack_group<F>(k, r0 + 16, g1, pack_bias(Digits == 2));
  auto mask = [&](std::int64_t r) -> __mmask16 {
    const std::int64_t n = k.rows - r;
    return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
  };
  const __mmask16 m0 = mask(r0), m1 = mask(r0 + 16);
  int t = 0;
  for (; t + NT <= k.n_tok; t += NT) bsum_tile<F, NT, Digits>(k, g0, g1, r0, t, m0, m1);
  for (; t < k.n_tok; ++t) bsum_tile<F, 1, Digits>(k, g0, g1, r0, t, m0, m1);
}

// ------------------------------------------------------------------------------------ decode
// T < gemm_min_rows: no packing (each weight is used by few tokens). Per row and 64-weight block
// pair the weights are decoded to unsigned codes once (the int8 kernels' helpers), and per token
// one pair of vpdpbusd started from the zero-point correction gives the exact group-of-4 sums in
// 16 lanes (as dot_act's kernels; 8-bit rows: one vpdpbusd); the two 8-lane halves are summed to
// s_b (q6_k: each lane first times its sub-block scale, mod 2^32 like the scalar formula), then
// the scalar float chain.
template <tensor_format F, bool Wide>
// cppcheck-suppress unusedFunction ; taken as a function pointer with explicit template arguments (pick_bsum_*), which cppcheck does not count
GF_TARGET_AVX512 inline void bsum_decode_rows(const mm_task& k, std::int64_t rb, std::int64_t re) {
  namespace v = avx512;
  constexpr int shift = F == tensor_format::q8_0 ? 7 : F == tensor_format::q5_0 ? 4 : F == tensor_format::q6_k ? 5 : 0;
  const int nb = k.L.nb;
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  for (std::int64_t r = rb; r < re; ++r) {
    const std::byte* row = k.wrow(r);
    for (int t0 = 0; t0 < k.n_tok; t0 += 8) {
      const int nt = k.n_tok - t0 < 8 ? k.n_tok - t0 : 8;
      act_row A[8];
      float acc[8] = {}, macc[8] = {};
      for (int t = 0; t < nt; ++t) A[t] = act_row_at(k.act, k.L, t0 + t);
      int p = 0;
      for (; 2 * p + 1 < nb; ++p) {
        __m512i w;
        __m512i scv = _mm512_setzero_si512();
        float ws0, ws1, dm0 = 0.0f, dm1 = 0.0f;
        if constexpr (F == tensor_format::q8_0) {
          const auto* b = reinterpret_cast<const math::block_q8_0*>(row) + 2 * p;
          w = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs))),
                                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1),
                               flip);
          ws0 = to_float(b[0].d);
          ws1 = to_float(b[1].d);
        } else if constexpr (F == tensor_format::q5_0) {
          const auto* b = reinterpret_cast<const math::block_q5_0*>(row) + 2 * p;
          w = v::q5_0_codes_pair(b);
          ws0 = to_float(b[0].d);
          ws1 = to_float(b[1].d);
        } else if constexpr (F == tensor_format::q4_k) {
          const auto* b = reinterpret_cast<const math::block_q4_k*>(row) + p / 4;
          const int j = p % 4;
          w = v::q4_k_codes(b, j);
          int sc0, m0, sc1, m1;
          math::q4_k_scale_min(b->scales, 2 * j, sc0, m0);
          math::q4_k_scale_min(b->scales, 2 * j + 1, sc1, m1);
          const float d = to_float(b->d), dmin = to_float(b->dmin);
          ws0 = d * float(sc0);
          ws1 = d * float(sc1);
          dm0 = dmin * float(m0);
          dm1 = dmin * float(m1);
        } else {
          const auto* b = reinterpret_cast<const math::block_q6_k*>(row) + p / 4;
          const int q = p % 4;
          __m512i w0, w1;
          v::q6_k_codes(b, q / 2, w0, w1);
          w = q % 2 ? w1 : w0;
          scv = _mm512_permutexvar_epi32(v::quad_index(q),
                                         _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales))));
          ws0 = ws1 = to_float(b->d);
        }
        for (int t = 0; t < nt; ++t) {
          const __m512i x1 = _mm512_loadu_si512(A[t].q + 64 * p);
          const __m512i corr = shift ? _mm512_slli_epi32(_mm512_loadu_si512(A[t].nsum4 + 16 * p), shift) : _mm512_setzero_si512();
          __m512i s;
          if constexpr (Wide)
            s = _mm512_add_epi32(_mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x1), 7),
                                 _mm512_dpbusd_epi32(corr, w, _mm512_loadu_si512(A[t].q2 + 64 * p)));
          else
            s = _mm512_dpbusd_epi32(corr, w, x1);
          if constexpr (F == tensor_format::q6_k) s = _mm512_mullo_epi32(s, scv);
          const int s0 = hsum8_epi32_avx2(_mm512_castsi512_si256(s)), s1 = hsum8_epi32_avx2(_mm512_extracti64x4_epi64(s, 1));
          acc[t] = fmaf(float(s0), ws0 * A[t].dx[2 * p], acc[t]);
          acc[t] = fmaf(float(s1), ws1 * A[t].dx[2 * p + 1], acc[t]);
          if constexpr (F == tensor_format::q4_k) {
            macc[t] = fmaf(dm0, A[t].xsum[2 * p], macc[t]);
            macc[t] = fmaf(dm1, A[t].xsum[2 * p + 1], macc[t]);
          }
        }
      }
      if constexpr (F == tensor_format::q8_0 || F == tensor_format::q5_0) {
        if (nb & 1) {  // the last, unpaired block: the scalar formula
          using blk = std::conditional_t<F == tensor_format::q8_0, math::block_q8_0, math::block_q5_0>;
          const blk& b = reinterpret_cast<const blk*>(row)[nb - 1];
          for (int t = 0; t < nt; ++t) {
            const int s = math::bsum_detail::sum32(b, A[t].q + 32 * (nb - 1), Wide ? A[t].q2 + 32 * (nb - 1) : nullptr);
            acc[t] = fmaf(float(s), to_float(b.d) * A[t].dx[nb - 1], acc[t]);
          }
        }
      }
      for (int t = 0; t < nt; ++t) k.out(t0 + t, r) = F == tensor_format::q4_k ? acc[t] - macc[t] : acc[t];
    }
  }
}

using bsum_rows_fn = void (*)(const mm_task&, std::int64_t, std::int64_t);

// cppcheck-suppress unusedFunction ; called by pick_bsum_decode with explicit template arguments, which cppcheck does not count
template <bool Wide>
inline bsum_rows_fn pick_bsum_decode_for(tensor_format f) {
  switch (f) {
    case tensor_format::q8_0: return &bsum_decode_rows<tensor_format::q8_0, Wide>;
    case tensor_format::q5_0: return &bsum_decode_rows<tensor_format::q5_0, Wide>;
    case tensor_format::q4_k: return &bsum_decode_rows<tensor_format::q4_k, Wide>;
    case tensor_format::q6_k: return &bsum_decode_rows<tensor_format::q6_k, Wide>;
    default: return nullptr;
  }
}
// cppcheck-suppress unusedFunction ; called by cpu::matmul (matmul.hpp) under #if GF_X86
inline bsum_rows_fn pick_bsum_decode(tensor_format f, bool wide) {
  return wide ? pick_bsum_decode_for<true>(f) : pick_bsum_decode_for<false>(f);
}

using bsum_unit_fn = void (*)(const mm_task&, std::int64_t, packed_block*);

template <int Digits>
inline bsum_unit_fn pick_bsum_unit_for(tensor_format f) {
  switch (f) {
    case tensor_format::q8_0: return &bsum_unit<tensor_format::q8_0, Digits>;
    case tensor_format::q5_0: return &bsum_unit<tensor_format::q5_0, Digits>;
    case tensor_format::q4_k: return &bsum_unit<tensor_format::q4_k, Digits>;
    case tensor_format::q6_k: return &bsum_unit<tensor_format::q6_k, Digits>;
    default: return nullptr;
  }
}
inline bsum_unit_fn pick_bsum_unit(tensor_format f, bool wide) {
  return wide ? pick_bsum_unit_for<2>(f) : pick_bsum_unit_for<1>(f);
}
#endif

}  // namespace detail

#if GF_X86
// The GEMM over all rows of k (k.act in the biased layout). `scratch`: gemm_pack_scratch_bytes(
// k.cols, pool.size()) bytes, 64-byte aligned. One part per thread; the parts claim 32-row units
// from a shared counter (a descheduled thread leaves its units to the others), each part packs
// into its own slot.
// cppcheck-suppress unusedFunction ; called by cpu::matmul (matmul.hpp) under #if GF_X86, after a call with explicit template arguments that cppcheck misreads
inline void gemm_block_sums_avx512(thread_pool& pool, const detail::mm_task& k, std::byte* scratch) {
  const detail::bsum_unit_fn fn = detail::pick_bsum_unit(k.fmt, k.L.wide);
  const std::int64_t units = (k.rows + gemm_unit_rows - 1) / gemm_unit_rows;
  const std::size_t slot = gemm_pack_slot_bytes(k.cols);
  std::atomic<std::int64_t> next{0};
  pool.run_parts(pool.size(), [&](int part, int) {
    auto* mine = reinterpret_cast<packed_block*>(scratch + std::size_t(part) * slot);
    for (std::int64_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < units;) fn(k, u * gemm_unit_rows, mine);
  });
}
#endif

}  // namespace gemmaforge::cpu
