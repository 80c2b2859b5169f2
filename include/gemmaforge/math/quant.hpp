#pragma once
// Block formats of weight tensors (GGUF/ggml layouts), their dequantization, and the 8-bit
// activation blocks the fast matmul path multiplies them with. Everything is per block / per row
// and GF_HOST_DEVICE: the CPU schedules (backend/cpu/matmul*.hpp) and CUDA follow these formulas.
//
// Layouts (little-endian, blocks packed back to back along a row):
//   q8_0  34 B / 32 w : f16 d, i8 qs[32];                       w_i = d * qs[i]
//   q5_0  22 B / 32 w : f16 d, u8 qh[4], u8 qs[16];             q_i = lo/hi nibble | qh bit i << 4
//                       (i < 16: low nibble of qs[i]; i >= 16: high nibble of qs[i - 16]),
//                       w_i = d * (q_i - 16)
//   q4_k 144 B / 256 w: f16 d, f16 dmin, u8 scales[12], u8 qs[128]; 8 sub-blocks of 32 with 6-bit
//                       scale sc_k and min m_k; 64-weight chunk j = qs[32j..32j+31]: low nibbles
//                       are sub-block 2j, high nibbles sub-block 2j+1; w = d*sc*q - dmin*m
//   q6_k 210 B / 256 w: u8 ql[128], u8 qh[64], i8 scales[16], f16 d; 16 sub-blocks of 16 with an
//                       8-bit scale; 6-bit q = 4 bits of ql | 2 bits of qh << 4; w = d*sc*(q - 32)
//
// Dequantized values are exact products in f32 (an f16 d has 11 significant bits, scales <= 8 and
// quants <= 6 bits: d*sc*q fits 24 bits), except q4_k's final subtraction, rounded once. So the
// values equal gguf-py's and ggml's dequantizers bit for bit (tests/unit/math_quant_test.cpp).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/reduce.hpp>

namespace gemmaforge::math {

struct block_q8_0 {
  f16 d;
  std::int8_t qs[32];
};
struct block_q5_0 {
  f16 d;
  std::uint8_t qh[4];
  std::uint8_t qs[16];
};
struct block_q4_k {
  f16 d;
  f16 dmin;
  std::uint8_t scales[12];
  std::uint8_t qs[128];
};
struct block_q6_k {
  std::uint8_t ql[128];
  std::uint8_t qh[64];
  std::int8_t scales[16];
  f16 d;
};
static_assert(sizeof(block_q8_0) == 34 && alignof(block_q8_0) == 2);
static_assert(sizeof(block_q5_0) == 22 && alignof(block_q5_0) == 2);
static_assert(sizeof(block_q4_k) == 144 && alignof(block_q4_k) == 2);
static_assert(sizeof(block_q6_k) == 210 && alignof(block_q6_k) == 2);

// ---------------------------------------------------------------------------- per-weight access
GF_HOST_DEVICE int q5_0_quant(const block_q5_0& b, int i) {  // 0..31
  std::uint32_t qh;
  memcpy(&qh, b.qh, 4);
  const int lo = i < 16 ? (b.qs[i] & 0xF) : (b.qs[i - 16] >> 4);
  return lo | int(((qh >> i) & 1u) << 4);
}

// 6-bit scale and min of q4_k sub-block k (0..7) from the 12 packed bytes.
GF_HOST_DEVICE void q4_k_scale_min(const std::uint8_t* s, int k, int& sc, int& m) {
  if (k < 4) {
    sc = s[k] & 63;
    m = s[k + 4] & 63;
  } else {
    sc = (s[k + 4] & 0xF) | ((s[k - 4] >> 6) << 4);
    m = (s[k + 4] >> 4) | ((s[k] >> 6) << 4);
  }
}

GF_HOST_DEVICE int q4_k_quant(const block_q4_k& b, int e) {  // element 0..255 -> 0..15
  const int j = e / 64, r = e % 64;
  const std::uint8_t byte = b.qs[32 * j + (r % 32)];
  return r < 32 ? (byte & 0xF) : (byte >> 4);
}

GF_HOST_DEVICE int q6_k_quant(const block_q6_k& b, int e) {  // element 0..255 -> 0..63
  const int n = e / 128, r = e % 128, c = r / 32, l = r % 32;
  const std::uint8_t lo_byte = b.ql[64 * n + (c & 1) * 32 + l];
  const int lo = (c >> 1) ? (lo_byte >> 4) : (lo_byte & 0xF);
  const int hi = (b.qh[32 * n + l] >> (2 * c)) & 3;
  return lo | (hi << 4);
}

// ----------------------------------------------------------------------------- dequantization
GF_HOST_DEVICE void dequantize_block(const block_q8_0& b, float* y) {
  const float d = to_float(b.d);
  for (int i = 0; i < 32; ++i) y[i] = d * float(b.qs[i]);
}

GF_HOST_DEVICE void dequantize_block(const block_q5_0& b, float* y) {
  const float d = to_float(b.d);
  for (int i = 0; i < 32; ++i) y[i] = d * float(q5_0_quant(b, i) - 16);
}

GF_HOST_DEVICE void dequantize_block(const block_q4_k& b, float* y) {
  const float d = to_float(b.d), dmin = to_float(b.dmin);
  for (int k = 0; k < 8; ++k) {
    int sc, m;
    q4_k_scale_min(b.scales, k, sc, m);
    const float dl = d * float(sc), ml = dmin * float(m);
    for (int i = 0; i < 32; ++i) y[32 * k + i] = dl * float(q4_k_quant(b, 32 * k + i)) - ml;
  }
}

GF_HOST_DEVICE void dequantize_block(const block_q6_k& b, float* y) {
  const float d = to_float(b.d);
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 16;  // 16 sub-blocks of 16 weights, one int8 scale each
    y[e] = (d * float(b.scales[sub])) * float(q6_k_quant(b, e) - 32);
  }
}

// Dequantize n consecutive weights of a row (n a multiple of the format's block size).
GF_HOST_DEVICE void dequantize_row(tensor_format f, const std::byte* src, float* y, std::int64_t n) {
  switch (f) {
    case tensor_format::f32:
      memcpy(y, src, std::size_t(n) * 4);
      return;
    case tensor_format::f16: {
      const f16* p = reinterpret_cast<const f16*>(src);
      for (std::int64_t i = 0; i < n; ++i) y[i] = to_float(p[i]);
      return;
    }
    case tensor_format::bf16: {
      const bf16* p = reinterpret_cast<const bf16*>(src);
      for (std::int64_t i = 0; i < n; ++i) y[i] = to_float(p[i]);
      return;
    }
    case tensor_format::q8_0: {
      const block_q8_0* p = reinterpret_cast<const block_q8_0*>(src);
      for (std::int64_t b = 0; b < n / 32; ++b) dequantize_block(p[b], y + 32 * b);
      return;
    }
    case tensor_format::q5_0: {
      const block_q5_0* p = reinterpret_cast<const block_q5_0*>(src);
      for (std::int64_t b = 0; b < n / 32; ++b) dequantize_block(p[b], y + 32 * b);
      return;
    }
    case tensor_format::q4_k: {
      const block_q4_k* p = reinterpret_cast<const block_q4_k*>(src);
      for (std::int64_t b = 0; b < n / 256; ++b) dequantize_block(p[b], y + 256 * b);
      return;
    }
    case tensor_format::q6_k: {
      const block_q6_k* p = reinterpret_cast<const block_q6_k*>(src);
      for (std::int64_t b = 0; b < n / 256; ++b) dequantize_block(p[b], y + 256 * b);
      return;
    }
  }
}

// --------------------------------------------------------------- exact (f32-activation) dot
// y = sum_c W[c] x[c] with the dequantized weights, in the canonical 16-lane order
// (math/reduce.hpp): lane c % 16, fmaf, ascending c, tree_sum16.
GF_HOST_DEVICE float dot_exact(tensor_format f, const std::byte* row, const float* x, int cols) {
  float lane[16] = {};
  float w[256];
  const int be = int(block_elems(f));
  const int chunk = be > 1 ? be : 256;
  for (int c0 = 0; c0 < cols; c0 += chunk) {
    const int n = cols - c0 < chunk ? cols - c0 : chunk;
    dequantize_row(f, row + std::uint64_t(c0 / be) * std::uint64_t(block_bytes(f)), w, n);
    for (int i = 0; i < n; ++i) lane[(c0 + i) % 16] = fmaf(w[i], x[c0 + i], lane[(c0 + i) % 16]);
  }
  return tree_sum16(lane);
}

// ------------------------------------------------------------------- quantized activations
// The integer matmul paths quantize each 32-value block of an activation row:
//   8-bit : dx = amax / 127,   q = rint(x * (127 / amax))      in [-127, 127]
//   15-bit: dx = amax / 16256, q = rint(x * (16256 / amax))    in [-16256, 16256], stored as two
//           int8 digits q = 128 * q1 + q2 with q2 in [-64, 63] (q1 = (q + 64) >> 7, |q1| <= 127),
//           so the 8-bit integer dot product instructions (VNNI vpdpbusd, maddubs) compute it
//           exactly with two passes. 16256 = 128 * 127: the rounding error is 128x smaller.
// Rounding is half to even (rintf; what cvtps2dq does).
inline constexpr int act_block = 32;
inline constexpr float act_qmax8 = 127.0f;
inline constexpr float act_qmax15 = 16256.0f;

GF_HOST_DEVICE float quantize_act_block(const float* x, std::int8_t* q) {
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(x[i]));
  const float id = amax > 0.0f ? act_qmax8 / amax : 0.0f;
  for (int i = 0; i < 32; ++i) q[i] = std::int8_t(int(rintf(x[i] * id)));
  return amax / act_qmax8;
}

GF_HOST_DEVICE float quantize_act_block15(const float* x, std::int8_t* q1, std::int8_t* q2) {
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(x[i]));
  const float id = amax > 0.0f ? act_qmax15 / amax : 0.0f;
  for (int i = 0; i < 32; ++i) {
    const int q = int(rintf(x[i] * id));
    const int hi = (q + 64) >> 7;  // arithmetic shift: floor
    q1[i] = std::int8_t(hi);
    q2[i] = std::int8_t(q - hi * 128);
  }
  return amax / act_qmax15;
}

// Canonical integer dot of a quantized weight row with a quantized activation row.
// xq(i) = q[i] (8-bit) or 128 * q1[i] + q2[i] (15-bit, q2 != nullptr).
// Activation block b (32 values) splits into 8 groups of 4; group j's exact integer sum
//   s_bj = sum_{k<4} wint[32b + 4j + k] * xq(32b + 4j + k)        (wint = signed weight integer)
// is scaled and accumulated into lane (b & 1) * 8 + j:
//   lane = fmaf(float(s_bj) * dx_b, wscale_bj, lane)              ascending b
// wscale is the weight's per-group float scale (d, or d * sc for k-quants). Then tree_sum16.
// q4_k adds its min term through 8 more lanes, one per sub-block k of a super-block:
//   mlane_k = fmaf(dmin * m_k, xsum_b, mlane_k),  xsum_b = dx_b * float(sum_i xq(32b + i))
// and returns tree_sum16(lanes) - tree_sum8(mlanes). An AVX-512 register holds two blocks' lanes,
// AVX2 keeps even and odd blocks in two registers: all schedules give these exact bits.
// (|s_bj| <= 4 * 128 * 16256 < 2^24, so float(s_bj) is exact.)
namespace act_detail {
GF_HOST_DEVICE void lane_fma(float* lane, int b, const int* s, float dx, const float* wscale) {
  for (int j = 0; j < 8; ++j) lane[(b & 1) * 8 + j] = fmaf(float(s[j]) * dx, wscale[j], lane[(b & 1) * 8 + j]);
}
GF_HOST_DEVICE int xq_at(const std::int8_t* q1, const std::int8_t* q2, int i) {
  return q2 ? 128 * int(q1[i]) + int(q2[i]) : int(q1[i]);
}
// Signed weight integer i of block-row `row` (block elements of the format).
GF_HOST_DEVICE int wint(const block_q8_0& b, int i) { return b.qs[i]; }
GF_HOST_DEVICE int wint(const block_q5_0& b, int i) { return q5_0_quant(b, i) - 16; }
}  // namespace act_detail

template <class Block>
GF_HOST_DEVICE float dot_act_b32(const Block* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  float lane[16] = {};
  for (int b = 0; b < nb; ++b) {
    int s[8];
    float ws[8];
    const float d = to_float(w[b].d);
    for (int j = 0; j < 8; ++j) {
      s[j] = 0;
      for (int k = 0; k < 4; ++k) s[j] += act_detail::wint(w[b], 4 * j + k) * act_detail::xq_at(q1, q2, 32 * b + 4 * j + k);
      ws[j] = d;
    }
    act_detail::lane_fma(lane, b, s, dx[b], ws);
  }
  return tree_sum16(lane);
}

GF_HOST_DEVICE float dot_act(const block_q8_0* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  return dot_act_b32(w, q1, q2, dx, nb);
}
GF_HOST_DEVICE float dot_act(const block_q5_0* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  return dot_act_b32(w, q1, q2, dx, nb);
}

// nb = activation blocks (a multiple of 8: one q4_k block per 8).
GF_HOST_DEVICE float dot_act(const block_q4_k* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  float lane[16] = {};
  float mlane[8] = {};
  for (int b = 0; b < nb; ++b) {
    const block_q4_k& blk = w[b / 8];
    const int k = b % 8;
    int sc, m;
    q4_k_scale_min(blk.scales, k, sc, m);
    const float dsc = to_float(blk.d) * float(sc);
    int s[8];
    float ws[8];
    int xs = 0;
    for (int j = 0; j < 8; ++j) {
      s[j] = 0;
      for (int i = 0; i < 4; ++i) {
        const int xi = act_detail::xq_at(q1, q2, 32 * b + 4 * j + i);
        s[j] += q4_k_quant(blk, 32 * k + 4 * j + i) * xi;
        xs += xi;
      }
      ws[j] = dsc;
    }
    act_detail::lane_fma(lane, b, s, dx[b], ws);
    mlane[k] = fmaf(to_float(blk.dmin) * float(m), dx[b] * float(xs), mlane[k]);
  }
  return tree_sum16(lane) - tree_sum8(mlane);
}

GF_HOST_DEVICE float dot_act(const block_q6_k* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  float lane[16] = {};
  for (int b = 0; b < nb; ++b) {
    const block_q6_k& blk = w[b / 8];
    const int k = b % 8;
    const float d = to_float(blk.d);
    int s[8];
    float ws[8];
    for (int j = 0; j < 8; ++j) {
      s[j] = 0;
      for (int i = 0; i < 4; ++i)
        s[j] += (q6_k_quant(blk, 32 * k + 4 * j + i) - 32) * act_detail::xq_at(q1, q2, 32 * b + 4 * j + i);
      const int sub = 2 * k + j / 4;  // the 16-weight sub-block this group of 4 lies in
      ws[j] = d * float(blk.scales[sub]);
    }
    act_detail::lane_fma(lane, b, s, dx[b], ws);
  }
  return tree_sum16(lane);
}

// ----------------------------------------------------------- block-integer order (int16_block_sums)
// The order of matmul_precision::int16_block_sums: one exact integer per 32-value activation
// block, one float step per block, so a GEMM needs only integer dot products inside a block and a
// single convert + multiply + FMA per block (not one per group of 4 as dot_act above).
// With 15-bit activations xq(i) = 128 * q1[i] + q2[i] and the signed weight integers wint:
//   q8_0, q5_0: s_b = sum_{i<32} wint(i) * xq(32b + i)                           ws_b = d_b
//   q6_k      : s_b = sc_lo * sum_{i<16} (q_i - 32) xq(..) + sc_hi * sum_{16<=i<32} (q_i - 32) xq(..)
//               (sc_lo, sc_hi the int8 scales of the block's two 16-weight sub-blocks)   ws_b = d
//   q4_k      : s_b = sum_{i<32} q_i * xq(32b + i)   (q_i in 0..15)               ws_b = d * sc_k
// (|s_b| < 2^31 for all: q6_k's bound is 2 * 128 * 32 * 16 * 16256 < 2^31.) Then, b = 0..nb-1:
//   acc  = fmaf(float(s_b), ws_b * dx_b, acc)                                     acc starts at 0
// q4_k also keeps its min term exact per block in a second chain (xsum_b = dx_b * float(sum_i xq),
// the act layout's xsum):
//   macc = fmaf(dmin * float(m_k), xsum_b, macc)                                  result acc - macc
// float(s_b) rounds to nearest even (what cvtdq2ps does) when |s_b| >= 2^24.
namespace bsum_detail {
GF_HOST_DEVICE int sum32(const block_q8_0& w, const std::int8_t* q1, const std::int8_t* q2) {
  int s = 0;
  for (int i = 0; i < 32; ++i) s += int(w.qs[i]) * act_detail::xq_at(q1, q2, i);
  return s;
}
GF_HOST_DEVICE int sum32(const block_q5_0& w, const std::int8_t* q1, const std::int8_t* q2) {
  int s = 0;
  for (int i = 0; i < 32; ++i) s += (q5_0_quant(w, i) - 16) * act_detail::xq_at(q1, q2, i);
  return s;
}
template <class Block>
GF_HOST_DEVICE float dot_b32(const Block* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  float acc = 0.0f;
  for (int b = 0; b < nb; ++b) {
    const int s = sum32(w[b], q1 + 32 * b, q2 ? q2 + 32 * b : nullptr);
    acc = fmaf(float(s), to_float(w[b].d) * dx[b], acc);
  }
  return acc;
}
}  // namespace bsum_detail

GF_HOST_DEVICE float dot_block_sums(const block_q8_0* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  return bsum_detail::dot_b32(w, q1, q2, dx, nb);
}
GF_HOST_DEVICE float dot_block_sums(const block_q5_0* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  return bsum_detail::dot_b32(w, q1, q2, dx, nb);
}

// nb = activation blocks (a multiple of 8: one k-quant block per 8).
GF_HOST_DEVICE float dot_block_sums(const block_q4_k* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  float acc = 0.0f, macc = 0.0f;
  for (int b = 0; b < nb; ++b) {
    const block_q4_k& blk = w[b / 8];
    const int k = b % 8;
    int sc, m;
    q4_k_scale_min(blk.scales, k, sc, m);
    int s = 0, xs = 0;
    for (int i = 0; i < 32; ++i) {
      const int xi = act_detail::xq_at(q1, q2, 32 * b + i);
      s += q4_k_quant(blk, 32 * k + i) * xi;
      xs += xi;
    }
    acc = fmaf(float(s), (to_float(blk.d) * float(sc)) * dx[b], acc);
    macc = fmaf(to_float(blk.dmin) * float(m), dx[b] * float(xs), macc);
  }
  return acc - macc;
}

GF_HOST_DEVICE float dot_block_sums(const block_q6_k* w, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  float acc = 0.0f;
  for (int b = 0; b < nb; ++b) {
    const block_q6_k& blk = w[b / 8];
    const int k = b % 8;
    int half[2] = {0, 0};
    for (int i = 0; i < 32; ++i)
      half[i / 16] += (q6_k_quant(blk, 32 * k + i) - 32) * act_detail::xq_at(q1, q2, 32 * b + i);
    // Unsigned arithmetic: the sum fits int32 (bound above), the products are exact mod 2^32.
    const int s = int(std::uint32_t(int(blk.scales[2 * k])) * std::uint32_t(half[0]) +
                      std::uint32_t(int(blk.scales[2 * k + 1])) * std::uint32_t(half[1]));
    acc = fmaf(float(s), to_float(blk.d) * dx[b], acc);
  }
  return acc;
}

GF_HOST_DEVICE float dot_block_sums(tensor_format f, const std::byte* row, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  switch (f) {
    case tensor_format::q8_0: return dot_block_sums(reinterpret_cast<const block_q8_0*>(row), q1, q2, dx, nb);
    case tensor_format::q5_0: return dot_block_sums(reinterpret_cast<const block_q5_0*>(row), q1, q2, dx, nb);
    case tensor_format::q4_k: return dot_block_sums(reinterpret_cast<const block_q4_k*>(row), q1, q2, dx, nb);
    case tensor_format::q6_k: return dot_block_sums(reinterpret_cast<const block_q6_k*>(row), q1, q2, dx, nb);
    default: return 0.0f;
  }
}

// Dispatch on the format (quantized formats only). q2 = nullptr: 8-bit activations.
GF_HOST_DEVICE float dot_act(tensor_format f, const std::byte* row, const std::int8_t* q1, const std::int8_t* q2, const float* dx, int nb) {
  switch (f) {
    case tensor_format::q8_0: return dot_act(reinterpret_cast<const block_q8_0*>(row), q1, q2, dx, nb);
    case tensor_format::q5_0: return dot_act(reinterpret_cast<const block_q5_0*>(row), q1, q2, dx, nb);
    case tensor_format::q4_k: return dot_act(reinterpret_cast<const block_q4_k*>(row), q1, q2, dx, nb);
    case tensor_format::q6_k: return dot_act(reinterpret_cast<const block_q6_k*>(row), q1, q2, dx, nb);
    default: return 0.0f;
  }
}

}  // namespace gemmaforge::math
