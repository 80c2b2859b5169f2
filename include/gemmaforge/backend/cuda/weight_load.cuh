#pragma once
// Device-side readers of weight rows in every storage format (core/format.hpp, math/quant.hpp).
//
//   load8<F>(row, c0, w)        8 consecutive weights of a row, dequantized to f32 exactly as
//                               math::dequantize_block computes them (same products, same order),
//                               c0 a multiple of 8. Used by the exact matvec/GEMM and the embedding.
//   load_q32<F>(row, b, q)      activation block b (32 columns) of a quantized row as the int8 path
//                               of math::dot_act sees it: 8 words of 4 signed 8-bit weight
//                               integers, the per-group float scales and q4_k's min term.
//
// Alignment: every tensor starts on a 256-byte boundary (device arena) and rows of f32/f16/bf16
// (cols % 16 == 0) and q4_k (144-byte blocks) keep 16-byte alignment, so those use vector loads.
// q8_0 (34 B), q5_0 (22 B) and q6_k (210 B) blocks are only 2-byte aligned inside a row and are
// read in 16-bit pieces.
#include <cstddef>
#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/math/quant.hpp>

namespace gemmaforge::cuda::detail {

// Eight bytes from a 2-byte aligned address, as a 64-bit little-endian word.
__device__ __forceinline__ std::uint64_t ldg8_a2(const std::byte* p) {
  return std::uint64_t(ldg4_a2(p)) | (std::uint64_t(ldg4_a2(p + 4)) << 32);
}

__device__ __forceinline__ int byte_at(std::uint64_t w, int i) { return int((w >> (8 * i)) & 0xffu); }

// 6-bit scale and min of q4_k sub-block k, from the 12 packed bytes at `s` (4-byte aligned).
// Same bit manipulation as math::q4_k_scale_min, on the three 32-bit words of the scales (a byte
// array indexed by the run-time k would live in local memory).
__device__ __forceinline__ void q4_k_scale_min_dev(const std::byte* s, int k, int& sc, int& m) {
  const std::uint32_t w0 = ldg4(s), w1 = ldg4(s + 4), w2 = ldg4(s + 8);
  auto byte = [&](int i) -> int {
    const std::uint32_t w = i < 4 ? w0 : i < 8 ? w1 : w2;
    return int((w >> (8 * (i & 3))) & 0xffu);
  };
  if (k < 4) {
    sc = byte(k) & 63;
    m = byte(k + 4) & 63;
  } else {
    sc = (byte(k + 4) & 0xF) | ((byte(k - 4) >> 6) << 4);
    m = (byte(k + 4) >> 4) | ((byte(k) >> 6) << 4);
  }
}

template <tensor_format F>
__device__ __forceinline__ void load8(const std::byte* row, int c0, float* w) {
  if constexpr (F == tensor_format::f32) {
    const float* p = reinterpret_cast<const float*>(row) + c0;
    const float4 a = ldg_f4(p), b = ldg_f4(p + 4);
    w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w;
    w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
  } else if constexpr (F == tensor_format::f16 || F == tensor_format::bf16) {
    const uint4 v = ldg16(row + 2 * c0);
    const std::uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (F == tensor_format::bf16) {
        w[2 * i] = __uint_as_float(u[i] << 16);
        w[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
      } else {
        w[2 * i] = f16_bits_to_float(std::uint16_t(u[i] & 0xffffu));
        w[2 * i + 1] = f16_bits_to_float(std::uint16_t(u[i] >> 16));
      }
    }
  } else if constexpr (F == tensor_format::q8_0) {
    const std::byte* blk = row + std::size_t(c0 / 32) * 34;
    const float d = f16_bits_to_float(ldg2(blk));
    const std::uint64_t q = ldg8_a2(blk + 2 + c0 % 32);
#pragma unroll
    for (int i = 0; i < 8; ++i) w[i] = d * float(std::int8_t(std::uint8_t(byte_at(q, i))));
  } else if constexpr (F == tensor_format::q5_0) {
    const std::byte* blk = row + std::size_t(c0 / 32) * 22;
    const float d = f16_bits_to_float(ldg2(blk));
    const std::uint32_t qh = ldg4_a2(blk + 2);
    const int o = c0 % 32;
    const std::uint64_t qs = ldg8_a2(blk + 6 + (o % 16));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int byte = byte_at(qs, i);
      const int lo = o < 16 ? (byte & 0xF) : (byte >> 4);
      const int q = lo | int(((qh >> (o + i)) & 1u) << 4);
      w[i] = d * float(q - 16);
    }
  } else if constexpr (F == tensor_format::q4_k) {
    const std::byte* blk = row + std::size_t(c0 / 256) * 144;
    const int e0 = c0 % 256;
    const float d = f16_bits_to_float(ldg2(blk)), dmin = f16_bits_to_float(ldg2(blk + 2));
    int sc, m;
    q4_k_scale_min_dev(blk + 4, e0 / 32, sc, m);
    const float dl = d * float(sc), ml = dmin * float(m);
    const int j = e0 / 64, r = e0 % 64;
    const uint2 v = ldg8(blk + 16 + 32 * j + (r % 32));
    const std::uint64_t q = std::uint64_t(v.x) | (std::uint64_t(v.y) << 32);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int byte = byte_at(q, i);
      const int nib = r < 32 ? (byte & 0xF) : (byte >> 4);
      w[i] = dl * float(nib) - ml;
    }
  } else if constexpr (F == tensor_format::q6_k) {
    const std::byte* blk = row + std::size_t(c0 / 256) * 210;
    const int e0 = c0 % 256;
    const int n = e0 / 128, r = e0 % 128, c = r / 32, l0 = r % 32;
    const std::uint64_t ql = ldg8_a2(blk + 64 * n + (c & 1) * 32 + l0);
    const std::uint64_t qh = ldg8_a2(blk + 128 + 32 * n + l0);
    const auto sc = std::int8_t(__ldg(reinterpret_cast<const unsigned char*>(blk + 192 + e0 / 16)));
    const float d = f16_bits_to_float(ldg2(blk + 208));
    const float ds = d * float(sc);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int lb = byte_at(ql, i);
      const int lo = (c >> 1) ? (lb >> 4) : (lb & 0xF);
      const int hi = (byte_at(qh, i) >> (2 * c)) & 3;
      w[i] = ds * float((lo | (hi << 4)) - 32);
    }
  }
}

// The int8 view of one 32-column activation block of a quantized row (math::dot_act).
struct q32_block {
  int q[8];           // q[j]: weight integers of columns 4j..4j+3 of the block, packed as 4 x int8
  float ws_lo = 0.f;  // float scale of groups j < 4
  float ws_hi = 0.f;  // float scale of groups j >= 4 (differs from ws_lo only for q6_k)
  float mterm = 0.f;  // q4_k: dmin * m of the block's sub-block (subtracted through the min lanes)
};

template <tensor_format F>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not read as a call
__device__ __forceinline__ q32_block load_q32(const std::byte* row, int b) {
  q32_block o;
  if constexpr (F == tensor_format::q8_0) {
    const std::byte* blk = row + std::size_t(b) * 34;
    o.ws_lo = o.ws_hi = f16_bits_to_float(ldg2(blk));
#pragma unroll
    for (int j = 0; j < 8; ++j) o.q[j] = int(ldg4_a2(blk + 2 + 4 * j));
  } else if constexpr (F == tensor_format::q5_0) {
    const std::byte* blk = row + std::size_t(b) * 22;
    o.ws_lo = o.ws_hi = f16_bits_to_float(ldg2(blk));
    const std::uint32_t qh = ldg4_a2(blk + 2);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const std::uint32_t qs = ldg4_a2(blk + 6 + 4 * (j % 4));
      const std::uint32_t lo = (j < 4 ? qs : qs >> 4) & 0x0F0F0F0Fu;
      const std::uint32_t bits = qh >> (4 * j);
      const std::uint32_t hb = (bits & 1u) | ((bits & 2u) << 7) | ((bits & 4u) << 14) | ((bits & 8u) << 21);
      o.q[j] = int(__vsub4(lo | (hb << 4), 0x10101010u));  // q - 16 per byte, as signed int8
    }
  } else if constexpr (F == tensor_format::q4_k) {
    const std::byte* blk = row + std::size_t(b / 8) * 144;
    const int k = b % 8;
    int sc, m;
    q4_k_scale_min_dev(blk + 4, k, sc, m);
    o.ws_lo = o.ws_hi = f16_bits_to_float(ldg2(blk)) * float(sc);
    o.mterm = f16_bits_to_float(ldg2(blk + 2)) * float(m);
    const std::byte* qs = blk + 16 + 32 * (k / 2);
    const uint4 a = ldg16(qs), c = ldg16(qs + 16);
    const std::uint32_t u[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};
#pragma unroll
    for (int j = 0; j < 8; ++j) o.q[j] = int(((k & 1) ? (u[j] >> 4) : u[j]) & 0x0F0F0F0Fu);
  } else if constexpr (F == tensor_format::q6_k) {
    const std::byte* blk = row + std::size_t(b / 8) * 210;
    const int k = b % 8, n = k / 4, c = k % 4;
    const float d = f16_bits_to_float(ldg2(blk + 208));
    const auto s0 = std::int8_t(__ldg(reinterpret_cast<const unsigned char*>(blk + 192 + 2 * k)));
    const auto s1 = std::int8_t(__ldg(reinterpret_cast<const unsigned char*>(blk + 193 + 2 * k)));
    o.ws_lo = d * float(s0);
    o.ws_hi = d * float(s1);
    const std::byte* ql = blk + 64 * n + (c & 1) * 32;
    const std::byte* qh = blk + 128 + 32 * n;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const std::uint32_t l = ldg4_a2(ql + 4 * j), h = ldg4_a2(qh + 4 * j);
      const std::uint32_t lo = ((c >> 1) ? (l >> 4) : l) & 0x0F0F0F0Fu;
      const std::uint32_t hi = ((h >> (2 * c)) & 0x03030303u) << 4;
      o.q[j] = int(__vsub4(lo | hi, 0x20202020u));  // q - 32 per byte
    }
  }
  return o;
}

}  // namespace gemmaforge::cuda::detail
