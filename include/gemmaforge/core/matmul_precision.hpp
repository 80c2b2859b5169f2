#pragma once
// How a matmul with a block-quantized weight treats its activations. One enum for every backend;
// a backend that lacks a mode says so (the CUDA backend runs int8_activations and exact).
#include <cstdint>
#include <string_view>

namespace gemmaforge {

enum class matmul_precision : std::uint8_t {
  int8_activations,   // activations quantized to int8 per block: fastest, ~1e-2 relative logit error
  int16_activations,  // 15-bit activations: near-exact at integer speed (CPU default)
  exact,              // f32 activations against the dequantized weights: the reference path
};

constexpr std::string_view to_string(matmul_precision p) {
  switch (p) {
    case matmul_precision::int8_activations: return "int8 activations";
    case matmul_precision::int16_activations: return "int16 activations";
    case matmul_precision::exact: return "exact matmul";
  }
  return "?";
}

}  // namespace gemmaforge
