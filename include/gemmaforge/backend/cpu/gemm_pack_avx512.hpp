#pragma once
// AVX-512 packing of int16_block_sums' GEMM weights: the same packed_block bytes as the scalar
// reference detail::pack_group (gemm_block_sums.hpp describes the fields), at a fraction of its
// cost. Per 16-row group and step of S blocks (S = 1 for q8_0 / q5_0, one 256-weight super-block
// for q4_k / q6_k), each row's S blocks are decoded with vector ops into signed int8 codes in a
// small stack buffer, and its scales are written to its lane of the S records (q4_k's ws/dm and
// q6_k's sc by one scatter per row). Then per block the 16 rows x 8 dwords are transposed into
// w[8][16] with unpacks and two-source permutes (8 stores) and the row sums come from the
// transposed dwords with vpdpbusd against ones, so init is 16 lanes at once.
// Scales go through the scalar to_float (NaN payloads and subnormals as the reference).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <gemmaforge/backend/cpu/x86_intrin.hpp>
#include <gemmaforge/backend/cpu/gemm_pack_layout.hpp>
#include <gemmaforge/backend/cpu/matmul_avx512.hpp>
#include <gemmaforge/backend/cpu/matmul_task.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/math/quant.hpp>

#if GF_X86
namespace gemmaforge::cpu::detail::avx512 {

// Dword offsets between the same lane of consecutive records, and of the second scale field.
inline constexpr int record_dwords = int(sizeof(packed_block) / 4);
static_assert(offsetof(packed_block, dm) - offsetof(packed_block, ws) == 64);  // dm = ws + 16 dwords
static_assert(sizeof(packed_block::sc[0]) == 64);                                 // sc[1] = sc[0] + 16 dwords

// [row i | row i + 8] of a block's codes, 8 dwords each (`block` points at row 0's block).
GF_AVX512_FN __m512i pack_row_pair(const std::int8_t* block, int row_bytes, int i) {
  const std::int8_t* a = block + std::ptrdiff_t(i) * row_bytes;
  const std::int8_t* b = a + std::ptrdiff_t(8) * row_bytes;
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(a))),
                            _mm256_load_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

// Block `blk` of 16 rows of codes (row i at codes + i * row_bytes, 32 signed weights per block)
// into p.w (dword j of row i -> p.w[j][i]) and p.init = -bias * (row sums; q6_k: per half).
GF_AVX512_FN void pack_transpose_block(const std::int8_t* codes, int row_bytes, int blk, bool halves, int bias, packed_block& p) {
  const std::int8_t* c = codes + 32 * blk;
  const __m512i r0 = pack_row_pair(c, row_bytes, 0), r1 = pack_row_pair(c, row_bytes, 1), r2 = pack_row_pair(c, row_bytes, 2),
                r3 = pack_row_pair(c, row_bytes, 3), r4 = pack_row_pair(c, row_bytes, 4), r5 = pack_row_pair(c, row_bytes, 5),
                r6 = pack_row_pair(c, row_bytes, 6), r7 = pack_row_pair(c, row_bytes, 7);
  // 8x8 dword transpose inside each 256-bit half (rows 0-7 low, 8-15 high). After the two unpack
  // rounds, u_c's 128-bit lane 0 holds dword c of 4 rows, lane 1 dword c + 4 (u0-u3: rows 0-3,
  // u4-u7: rows 4-7; lanes 2-3 the same for rows 8-15).
  const __m512i t0 = _mm512_unpacklo_epi32(r0, r1), t1 = _mm512_unpackhi_epi32(r0, r1);
  const __m512i t2 = _mm512_unpacklo_epi32(r2, r3), t3 = _mm512_unpackhi_epi32(r2, r3);
  const __m512i t4 = _mm512_unpacklo_epi32(r4, r5), t5 = _mm512_unpackhi_epi32(r4, r5);
  const __m512i t6 = _mm512_unpacklo_epi32(r6, r7), t7 = _mm512_unpackhi_epi32(r6, r7);
  const __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
  const __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
  const __m512i u4 = _mm512_unpacklo_epi64(t4, t6), u5 = _mm512_unpackhi_epi64(t4, t6);
  const __m512i u6 = _mm512_unpacklo_epi64(t5, t7), u7 = _mm512_unpackhi_epi64(t5, t7);
  // dword c: [u_c lane 0, u_c+4 lane 0, u_c lane 2, u_c+4 lane 2]; c + 4: the odd lanes
  const __m512i even = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), odd = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  const __m512i w[8] = {_mm512_permutex2var_epi64(u0, even, u4), _mm512_permutex2var_epi64(u1, even, u5),
                        _mm512_permutex2var_epi64(u2, even, u6), _mm512_permutex2var_epi64(u3, even, u7),
                        _mm512_permutex2var_epi64(u0, odd, u4),  _mm512_permutex2var_epi64(u1, odd, u5),
                        _mm512_permutex2var_epi64(u2, odd, u6),  _mm512_permutex2var_epi64(u3, odd, u7)};
  const __m512i ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
  __m512i s0 = zero, s1 = zero;  // sums of weights 0-15 and 16-31 (4 signed bytes per dword)
  for (int j = 0; j < 4; ++j) {
    _mm512_storeu_si512(p.w[j], w[j]);
    _mm512_storeu_si512(p.w[j + 4], w[j + 4]);
    s0 = _mm512_dpbusd_epi32(s0, ones, w[j]);
    s1 = _mm512_dpbusd_epi32(s1, ones, w[j + 4]);
  }
  const __m512i nb = _mm512_set1_epi32(-bias);
  if (halves) {
    _mm512_storeu_si512(p.init[0], _mm512_mullo_epi32(s0, nb));
    _mm512_storeu_si512(p.init[1], _mm512_mullo_epi32(s1, nb));
  } else {
    _mm512_storeu_si512(p.init[0], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), nb));
    _mm512_storeu_si512(p.init[1], zero);
  }
}

// Blocks [b0, b0 + S) of one row: signed codes into `codes` (32 bytes per block), the row's
// scale fields into lane `lane` of out[b0 ..].
template <tensor_format F>
GF_AVX512_FN void pack_decode_row(const std::byte* row, int b0, std::int8_t* codes, packed_block* out, int lane) {
  if constexpr (F == tensor_format::q8_0) {
    const auto& blk = reinterpret_cast<const block_q8_0*>(row)[b0];
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs)));
    out[b0].ws[lane] = to_float(blk.d);
  } else if constexpr (F == tensor_format::q5_0) {
    const auto& blk = reinterpret_cast<const block_q5_0*>(row)[b0];
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes), _mm256_sub_epi8(q5_0_codes(&blk), _mm256_set1_epi8(16)));
    out[b0].ws[lane] = to_float(blk.d);
  } else if constexpr (F == tensor_format::q4_k) {
    const block_q4_k* blk = reinterpret_cast<const block_q4_k*>(row) + b0 / 8;
    for (int j = 0; j < 4; ++j) _mm512_store_si512(codes + 64 * j, q4_k_codes(blk, j));
    // [sc_0..7, m_0..7] as math::q4_k_scale_min unpacks them, times [d x 8, dmin x 8] (the
    // reference's d * float(sc) and dmin * float(m))
    const std::uint32_t u0 = load_u32(blk->scales), u1 = load_u32(blk->scales + 4), u2 = load_u32(blk->scales + 8);
    const std::uint32_t sc_lo = u0 & 0x3f3f3f3fu, sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    const std::uint32_t m_lo = u1 & 0x3f3f3f3fu, m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
    const __m512 sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_setr_epi32(int(sc_lo), int(sc_hi), int(m_lo), int(m_hi))));
    const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(to_float(blk->d)), _mm256_set1_ps(to_float(blk->dmin)), 1);
    const int r = record_dwords;
    const __m512i idx = _mm512_setr_epi32(0, r, 2 * r, 3 * r, 4 * r, 5 * r, 6 * r, 7 * r, 16, r + 16, 2 * r + 16, 3 * r + 16, 4 * r + 16,
                                          5 * r + 16, 6 * r + 16, 7 * r + 16);
    _mm512_i32scatter_ps(&out[b0].ws[lane], idx, _mm512_mul_ps(d, sm), 4);
  } else {
    static_assert(F == tensor_format::q6_k);
    const block_q6_k* blk = reinterpret_cast<const block_q6_k*>(row) + b0 / 8;
    const __m512i off = _mm512_set1_epi8(32);
    for (int n = 0; n < 2; ++n) {
      __m512i w0, w1;
      q6_k_codes(blk, n, w0, w1);
      _mm512_store_si512(codes + 128 * n, _mm512_sub_epi8(w0, off));
      _mm512_store_si512(codes + 128 * n + 64, _mm512_sub_epi8(w1, off));
    }
    // sub-block scales 2k, 2k + 1 -> sc[0], sc[1] of record b0 + k
    const int r = record_dwords;
    const __m512i idx = _mm512_setr_epi32(0, 16, r, r + 16, 2 * r, 2 * r + 16, 3 * r, 3 * r + 16, 4 * r, 4 * r + 16, 5 * r, 5 * r + 16,
                                          6 * r, 6 * r + 16, 7 * r, 7 * r + 16);
    _mm512_i32scatter_epi32(&out[b0].sc[0][lane], idx, _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales))), 4);
    const float d = to_float(blk->d);
    for (int k = 0; k < 8; ++k) out[b0 + k].ws[lane] = d;
  }
}

// Rows [r0, r0 + 16) (those < k.rows) of W into k.L.nb records: detail::pack_group's bytes.
template <tensor_format F>
GF_AVX512_FN void pack_group(const mm_task& k, std::int64_t r0, packed_block* out, int bias) {
  constexpr bool kq = F == tensor_format::q4_k || F == tensor_format::q6_k;
  constexpr int S = kq ? 8 : 1;        // blocks per decode step
  constexpr int row_bytes = 32 * S;
  alignas(64) std::int8_t codes[16][row_bytes];
  const std::int64_t left = k.rows - r0;
  const int n = left >= 16 ? 16 : left <= 0 ? 0 : int(left);
  if (n < 16) std::memset(codes[n], 0, std::size_t(16 - n) * row_bytes);  // rows past the matrix: zero codes
  const __m512i zero = _mm512_setzero_si512();
  for (int b0 = 0; b0 < k.L.nb; b0 += S) {
    for (int lane = 0; lane < n; ++lane) pack_decode_row<F>(k.wrow(r0 + lane), b0, codes[lane], out, lane);
    for (int i = 0; i < S; ++i) {
      packed_block& p = out[b0 + i];
      pack_transpose_block(&codes[0][0], row_bytes, i, F == tensor_format::q6_k, bias, p);
      if constexpr (F != tensor_format::q6_k) {  // fields the format has no value for
        _mm512_storeu_si512(p.sc[0], zero);
        _mm512_storeu_si512(p.sc[1], zero);
      }
      if constexpr (F != tensor_format::q4_k) _mm512_storeu_ps(p.dm, _mm512_setzero_ps());
      for (int lane = n; lane < 16; ++lane) {  // rows past the matrix
        p.ws[lane] = p.dm[lane] = 0.0f;
        p.sc[0][lane] = p.sc[1][lane] = 0;
      }
    }
  }
}

// cppcheck-suppress unusedFunction ; pack_group for k.fmt (false: not q8_0/q5_0/q4_k/q6_k), called by tests/unit/cpu_gemm_block_sums_test.cpp, which the unused-code pass cannot parse (a syntax error it reports in matmul_avx512.hpp)
GF_AVX512_FN bool pack_group_any(const mm_task& k, std::int64_t r0, packed_block* out, int bias) {
  switch (k.fmt) {
    case tensor_format::q8_0: pack_group<tensor_format::q8_0>(k, r0, out, bias); return true;
    case tensor_format::q5_0: pack_group<tensor_format::q5_0>(k, r0, out, bias); return true;
    case tensor_format::q4_k: pack_group<tensor_format::q4_k>(k, r0, out, bias); return true;
    case tensor_format::q6_k: pack_group<tensor_format::q6_k>(k, r0, out, bias); return true;
    default: return false;
  }
}

}  // namespace gemmaforge::cpu::detail::avx512
#endif
