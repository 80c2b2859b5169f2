#pragma once
// Storage formats of weight tensors, as they appear in model files. A Q4_K_M GGUF mixes several
// per tensor, so the format is a runtime property of each bound tensor; kernels dispatch on it once
// per matmul, never per element.
#include <cstdint>
#include <string_view>

#include <gemmaforge/core/macros.hpp>

namespace gemmaforge {

enum class tensor_format : std::uint8_t {
  f32,
  f16,
  bf16,
  q8_0,  // 32 weights / 34 B: f16 d, i8 q[32]; w = d*q
  q5_0,  // 32 weights / 22 B: f16 d, u8 qh[4], u8 qs[16]; w = d*(q-16), 5-bit q
  q4_k,  // 256 weights / 144 B: f16 d, f16 dmin, 12 B packed 6-bit scales/mins, 4-bit q
  q6_k,  // 256 weights / 210 B: ql[128], qh[64], i8 scales[16], f16 d; w = d*sc*(q-32)
};

// Weights per block and bytes per block (plain dtypes are blocks of one element); usable in device
// code too (the CUDA kernels step through rows with them).
GF_HOST_DEVICE constexpr std::uint32_t block_elems(tensor_format f) {
  switch (f) {
    case tensor_format::f32:
    case tensor_format::f16:
    case tensor_format::bf16: return 1;
    case tensor_format::q8_0:
    case tensor_format::q5_0: return 32;
    case tensor_format::q4_k:
    case tensor_format::q6_k: return 256;
  }
  return 0;
}

GF_HOST_DEVICE constexpr std::uint32_t block_bytes(tensor_format f) {
  switch (f) {
    case tensor_format::f32: return 4;
    case tensor_format::f16:
    case tensor_format::bf16: return 2;
    case tensor_format::q8_0: return 34;
    case tensor_format::q5_0: return 22;
    case tensor_format::q4_k: return 144;
    case tensor_format::q6_k: return 210;
  }
  return 0;
}

GF_HOST_DEVICE constexpr bool is_block_quantized(tensor_format f) { return block_elems(f) > 1; }

// Bytes of a row of `cols` weights (cols must be a multiple of block_elems).
GF_HOST_DEVICE constexpr std::uint64_t row_bytes(tensor_format f, std::uint64_t cols) {
  return cols / block_elems(f) * block_bytes(f);
}

constexpr std::string_view to_string(tensor_format f) {
  switch (f) {
    case tensor_format::f32: return "f32";
    case tensor_format::f16: return "f16";
    case tensor_format::bf16: return "bf16";
    case tensor_format::q8_0: return "q8_0";
    case tensor_format::q5_0: return "q5_0";
    case tensor_format::q4_k: return "q4_k";
    case tensor_format::q6_k: return "q6_k";
  }
  return "?";
}

inline constexpr tensor_format all_tensor_formats[] = {
    tensor_format::f32,  tensor_format::f16,  tensor_format::bf16, tensor_format::q8_0,
    tensor_format::q5_0, tensor_format::q4_k, tensor_format::q6_k};

}  // namespace gemmaforge
