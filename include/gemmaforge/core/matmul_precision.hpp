#pragma once
// How a matmul with a block-quantized weight treats its activations. One enum for every backend;
// a backend that lacks a mode says so (the CUDA backend refuses int16_block_sums).
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
};

constexpr std::string_view to_string(matmul_precision p) {
  switch (p) {
    case matmul_precision::int8_activations: return "int8 activations";
    case matmul_precision::int16_activations: return "int16 activations";
    case matmul_precision::exact: return "exact matmul";
    case matmul_precision::int16_block_sums: return "int16 block sums";
  }
  return "?";
}

}  // namespace gemmaforge
