#pragma once
// The packed weight layout of int16_block_sums' GEMM (backend/cpu/gemm_block_sums.hpp) and the
// scratch it needs, without the kernels: the plan (backend/cpu/scratch.hpp) sizes its region
// from here, and that header is also compiled by nvcc.
#include <cstddef>
#include <cstdint>

namespace gemmaforge::cpu {

// One 32-value block of 16 weight rows (the fields are described in gemm_block_sums.hpp).
struct packed_block {
  std::int8_t w[8][16][4];
  std::int32_t init[2][16];
  std::int32_t sc[2][16];
  float ws[16];
  float dm[16];
};
static_assert(sizeof(packed_block) == 896);

inline constexpr int gemm_unit_rows = 32;

// Scratch bytes of one packed unit (per part of the work; matmul_options::pack_scratch holds
// `parts` of them, parts = the pool's thread count).
constexpr std::size_t gemm_pack_slot_bytes(int cols) {
  return (std::size_t(gemm_unit_rows / 16) * std::size_t(cols / 32) * sizeof(packed_block) + 63) & ~std::size_t(63);
}
constexpr std::size_t gemm_pack_scratch_bytes(int cols, int threads) {
  return gemm_pack_slot_bytes(cols) * std::size_t(threads > 0 ? threads : 1);
}

}  // namespace gemmaforge::cpu
