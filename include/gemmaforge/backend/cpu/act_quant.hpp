#pragma once
// Activation rows quantized for the integer matmul paths (math::quantize_act_block, 8-bit, or
// quantize_act_block15, 15-bit as two int8 digits, per 32 values), laid out for the SIMD kernels.
// One row of `cols` values, nb = cols / 32 blocks, padded to an even count nbp (an AVX-512
// register covers two blocks; padding blocks are zero):
//   q     int8  [nbp * 32]   quantized values (15-bit: the high digit q1)
//   q2    int8  [nbp * 32]   15-bit only: the low digit (q = 128 * q1 + q2)
//   nsum4 int32 [nbp * 8]    -(sum of each group of 4 q): the kernels shift it by log2 of the
//                            weight's zero point (q8_0 XOR trick 128, q5_0 16, q6_k 32) and start
//                            the integer dot product from it, so unsigned weight codes give the
//                            exact signed dot product
//   dxv   f32   [nbp * 8]    each block's scale repeated over its 8 lanes
//   dx    f32   [nbp]        each block's scale (scalar kernels)
//   xsum  f32   [nbp]        dx * sum(q) of each block (q4_k's min term)
//   qu    u8    [nbp * 64]   the block-sums modes only (`biased`): per block the 32 high digits
//                            then the 32 low digits, each + 128 (x ^ 0x80), so VNNI's u8 x s8
//                            product takes the activation as its unsigned operand against packed
//                            signed weights (backend/cpu/gemm_block_sums.hpp); 8-bit rows: per
//                            block the 32 values + 128 ([nbp * 32])
// Row stride is a multiple of 64 bytes. Quantization is per row, so a row's bytes do not depend
// on the other rows of the batch; all three ISAs produce identical bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <gemmaforge/backend/cpu/cpu_features.hpp>
#include <gemmaforge/backend/cpu/simd.hpp>
#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/quant.hpp>

namespace gemmaforge::cpu {

struct act_layout {
  int nb = 0, nbp = 0;
  bool wide = false;    // 15-bit activations
  bool biased = false;  // also the qu region (the block-sums modes)
  std::size_t q = 0, q2 = 0, nsum4 = 0, dxv = 0, dx = 0, xsum = 0, qu = 0, row_bytes = 0;
};

constexpr act_layout make_act_layout(int cols, bool wide = false, bool biased = false) {
  act_layout L;
  L.nb = cols / 32;
  L.nbp = (L.nb + 1) & ~1;
  L.wide = wide;
  L.biased = biased;
  L.q = 0;
  L.q2 = L.q + std::size_t(L.nbp) * 32;
  L.nsum4 = L.q2 + (wide ? std::size_t(L.nbp) * 32 : 0);
  L.dxv = L.nsum4 + std::size_t(L.nbp) * 32;
  L.dx = L.dxv + std::size_t(L.nbp) * 32;
  L.xsum = L.dx + std::size_t(L.nbp) * 4;
  L.qu = (L.xsum + std::size_t(L.nbp) * 4 + 63) & ~std::size_t(63);
  L.row_bytes = (L.qu + (biased ? std::size_t(L.nbp) * (wide ? 64 : 32) : 0) + 63) & ~std::size_t(63);
  return L;
}

// Read-only view of one quantized row.
struct act_row {
  const std::int8_t* q;
  const std::int8_t* q2;  // nullptr for 8-bit rows
  const std::int32_t* nsum4;
  const float* dxv;
  const float* dx;
  const float* xsum;
};

inline act_row act_row_at(const std::byte* base, const act_layout& L, std::int64_t t) {
  const std::byte* p = base + std::size_t(t) * L.row_bytes;
  return {reinterpret_cast<const std::int8_t*>(p + L.q), L.wide ? reinterpret_cast<const std::int8_t*>(p + L.q2) : nullptr,
          reinterpret_cast<const std::int32_t*>(p + L.nsum4),
          reinterpret_cast<const float*>(p + L.dxv), reinterpret_cast<const float*>(p + L.dx),
          reinterpret_cast<const float*>(p + L.xsum)};
}

namespace detail {

// Zero the padding block (there is one when nb is odd, so kernels can walk blocks in pairs): every
// field 0, so it adds nothing to any dot product. Same bytes for every ISA.
inline void clear_act_padding(const act_layout& L, std::byte* row) {
  for (std::size_t b = std::size_t(L.nb); b < std::size_t(L.nbp); ++b) {
    std::memset(row + L.q + 32 * b, 0, 32);
    if (L.wide) std::memset(row + L.q2 + 32 * b, 0, 32);
    std::memset(row + L.nsum4 + 32 * b, 0, 32);  // 8 int32 group sums
    std::memset(row + L.dxv + 32 * b, 0, 32);    // 8 broadcast scales
    std::memset(row + L.dx + 4 * b, 0, 4);
    std::memset(row + L.xsum + 4 * b, 0, 4);
  }
}

inline void quantize_act_row_scalar(const float* x, const act_layout& L, std::byte* row) {
  auto* q = reinterpret_cast<std::int8_t*>(row + L.q);
  auto* q2 = reinterpret_cast<std::int8_t*>(row + L.q2);
  auto* ns = reinterpret_cast<std::int32_t*>(row + L.nsum4);
  auto* dxv = reinterpret_cast<float*>(row + L.dxv);
  auto* dx = reinterpret_cast<float*>(row + L.dx);
  auto* xs = reinterpret_cast<float*>(row + L.xsum);
  clear_act_padding(L, row);
  for (int b = 0; b < L.nb; ++b) {
    const float d = L.wide ? math::quantize_act_block15(x + 32 * b, q + 32 * b, q2 + 32 * b)
                           : math::quantize_act_block(x + 32 * b, q + 32 * b);
    int total = 0;
    for (int j = 0; j < 8; ++j) {
      int s = 0;
      for (int k = 0; k < 4; ++k) {
        const int i = 32 * b + 4 * j + k;
        s += L.wide ? 128 * q[i] + q2[i] : q[i];
      }
      ns[8 * b + j] = -s;
      dxv[8 * b + j] = d;
      total += s;
    }
    dx[b] = d;
    xs[b] = d * float(total);
  }
}

#if GF_X86
GF_TARGET_AVX2 inline __m256i pack32_epi8_avx2(const __m256i* v) {  // 32 int32 (in range) -> 32 int8, in order
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

GF_TARGET_AVX2 inline __m256i sum4_avx2(__m256i q) {  // int32 sums of each group of 4 int8
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
}

GF_TARGET_AVX2 inline int hsum8_epi32_avx2(__m256i v) {
  __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
  t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
  return _mm_cvtsi128_si32(t);
}

GF_TARGET_AVX2 inline void quantize_act_row_avx2(const float* x, const act_layout& L, std::byte* row) {
  auto* q = reinterpret_cast<std::int8_t*>(row + L.q);
  auto* q2 = reinterpret_cast<std::int8_t*>(row + L.q2);
  auto* ns = reinterpret_cast<std::int32_t*>(row + L.nsum4);
  auto* dxv = reinterpret_cast<float*>(row + L.dxv);
  auto* dx = reinterpret_cast<float*>(row + L.dx);
  auto* xs = reinterpret_cast<float*>(row + L.xsum);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const float qmax = L.wide ? math::act_qmax15 : math::act_qmax8;
  clear_act_padding(L, row);
  for (int b = 0; b < L.nb; ++b) {
    const float* xb = x + 32 * b;
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(xb + 8 * i);
      m = _mm256_max_ps(m, _mm256_and_ps(v[i], abs_mask));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float id = amax > 0.0f ? qmax / amax : 0.0f;
    const float d = amax / qmax;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int i = 0; i < 4; ++i) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));
    __m256i s4;
    if (L.wide) {
      __m256i hi[4], lo[4];
      for (int i = 0; i < 4; ++i) {
        hi[i] = _mm256_srai_epi32(_mm256_add_epi32(qi[i], _mm256_set1_epi32(64)), 7);
        lo[i] = _mm256_sub_epi32(qi[i], _mm256_slli_epi32(hi[i], 7));
      }
      const __m256i p1 = pack32_epi8_avx2(hi), p2 = pack32_epi8_avx2(lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), p1);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q2 + 32 * b), p2);
      s4 = _mm256_add_epi32(_mm256_slli_epi32(sum4_avx2(p1), 7), sum4_avx2(p2));
    } else {
      const __m256i p = pack32_epi8_avx2(qi);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), p);
      s4 = sum4_avx2(p);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ns + 8 * b), _mm256_sub_epi32(_mm256_setzero_si256(), s4));
    _mm256_storeu_ps(dxv + 8 * b, _mm256_set1_ps(d));
    dx[b] = d;
    xs[b] = d * float(hsum8_epi32_avx2(s4));
  }
}

GF_TARGET_AVX512 inline void quantize_act_row_avx512(const float* x, const act_layout& L, std::byte* row) {
  auto* q = reinterpret_cast<std::int8_t*>(row + L.q);
  auto* q2 = reinterpret_cast<std::int8_t*>(row + L.q2);
  auto* ns = reinterpret_cast<std::int32_t*>(row + L.nsum4);
  auto* dxv = reinterpret_cast<float*>(row + L.dxv);
  auto* dx = reinterpret_cast<float*>(row + L.dx);
  auto* xs = reinterpret_cast<float*>(row + L.xsum);
  const float qmax = L.wide ? math::act_qmax15 : math::act_qmax8;
  const __m256i ones = _mm256_set1_epi8(1);
  clear_act_padding(L, row);
  for (int b = 0; b < L.nb; ++b) {
    const float* xb = x + 32 * b;
    const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float id = amax > 0.0f ? qmax / amax : 0.0f;
    const float d = amax / qmax;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
    __m256i s4;
    if (L.wide) {
      const __m512i h0 = _mm512_srai_epi32(_mm512_add_epi32(i0, _mm512_set1_epi32(64)), 7);
      const __m512i h1 = _mm512_srai_epi32(_mm512_add_epi32(i1, _mm512_set1_epi32(64)), 7);
      const __m512i l0 = _mm512_sub_epi32(i0, _mm512_slli_epi32(h0, 7)), l1 = _mm512_sub_epi32(i1, _mm512_slli_epi32(h1, 7));
      const __m256i p1 = _mm256_set_m128i(_mm512_cvtsepi32_epi8(h1), _mm512_cvtsepi32_epi8(h0));
      const __m256i p2 = _mm256_set_m128i(_mm512_cvtsepi32_epi8(l1), _mm512_cvtsepi32_epi8(l0));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), p1);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q2 + 32 * b), p2);
      s4 = _mm256_add_epi32(_mm256_slli_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, p1), 7),
                            _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, p2));
    } else {
      const __m256i p = _mm256_set_m128i(_mm512_cvtsepi32_epi8(i1), _mm512_cvtsepi32_epi8(i0));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), p);
      s4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, p);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ns + 8 * b), _mm256_sub_epi32(_mm256_setzero_si256(), s4));
    _mm256_storeu_ps(dxv + 8 * b, _mm256_set1_ps(d));
    dx[b] = d;
    xs[b] = d * float(hsum8_epi32_avx2(s4));
  }
}
#endif

}  // namespace detail

namespace detail {
// The qu region from the signed digits (same bytes on every ISA; padding blocks stay 0 + 128).
inline void fill_biased_digits(const act_layout& L, std::byte* row) {
  const auto* q = reinterpret_cast<const std::uint8_t*>(row + L.q);
  const auto* q2 = reinterpret_cast<const std::uint8_t*>(row + L.q2);
  auto* qu = reinterpret_cast<std::uint8_t*>(row + L.qu);
  const int stride = L.wide ? 64 : 32;
  for (int b = 0; b < L.nbp; ++b)
    for (int i = 0; i < 32; ++i) {
      qu[stride * b + i] = std::uint8_t(q[32 * b + i] ^ 0x80u);
      if (L.wide) qu[64 * b + 32 + i] = std::uint8_t(q2[32 * b + i] ^ 0x80u);
    }
}
}  // namespace detail

// Quantize one activation row into `row` (L.row_bytes bytes).
// cppcheck-suppress unusedFunction ; cpu::matmul and cpu_matmul_test call it (a use cppcheck 2.10 misses)
inline void quantize_act_row(cpu_isa isa, const float* x, const act_layout& L, std::byte* row) {
#if GF_X86
  if (isa == cpu_isa::avx512) detail::quantize_act_row_avx512(x, L, row);
  else if (isa == cpu_isa::avx2) detail::quantize_act_row_avx2(x, L, row);
  else detail::quantize_act_row_scalar(x, L, row);
#else
  (void)isa;
  detail::quantize_act_row_scalar(x, L, row);
#endif
  if (L.biased) detail::fill_biased_digits(L, row);
}

}  // namespace gemmaforge::cpu
