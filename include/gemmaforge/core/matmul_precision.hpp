#pragma once
// How a matmul with a block-quantized weight treats its activations. One enum for every backend;
// a backend that lacks a mode says so (the CUDA backend refuses the two block-sums modes).
#include <cstdint>
#include <string_view>

namespace gemmaforge {

enum class matmul_precision : std::uint8_t {
  int8_activations,   // activations quantized to int8 per block: fastest, ~1e-2 relative logit error
  int16_activations,  // 15-bit activations: near-exact at integer speed (CPU default)
  exact,              // f32 activations against the dequantized weights: the reference path
  // 15-bit activations, one exact integer sum per 32-value block and one float step per block
  // (math/quant.hpp dot_block_sums): the order a packed integer GEMM runs fast. Opt-in (CPU only).
  int16_block_sums,
  // 8-bit activations (int8_activations' quantization) in the block-integer order: one VNNI
  // pass per block instead of two, the packed GEMM's fastest mode; int8's accuracy (opt-in, CPU only).
  int8_block_sums,
};

// The two modes of math/quant.hpp dot_block_sums' order (the packed GEMM).
constexpr bool is_block_sums(matmul_precision p) {
  return p == matmul_precision::int16_block_sums || p == matmul_precision::int8_block_sums;
}
// 15-bit activations (two int8 digits).
// cppcheck-suppress unusedFunction ; called by cpu::matmul and act_layout_for (matmul.hpp), which the unused-code pass misreads
constexpr bool has_wide_activations(matmul_precision p) {
  return p == matmul_precision::int16_activations || p == matmul_precision::int16_block_sums;
}

constexpr std::string_view to_string(matmul_precision p) {
  switch (p) {
    case matmul_precision::int8_activations: return "int8 activations";
    case matmul_precision::int16_activations: return "int16 activations";
    case matmul_precision::exact: return "exact matmul";
    case matmul_precision::int16_block_sums: return "int16 block sums";
    case matmul_precision::int8_block_sums: return "int8 block sums";
  }
  return "?";
}

}  // namespace gemmaforge
