#pragma once
// What one matmul call hands to the per-ISA kernels (internal to backend/cpu).
#include <cstddef>
#include <cstdint>

#include <gemmaforge/backend/cpu/act_quant.hpp>
#include <gemmaforge/core/format.hpp>

namespace gemmaforge::cpu::detail {

struct mm_task {
  tensor_format fmt = tensor_format::f32;
  const std::byte* w = nullptr;  // W[rows][cols], rows w_stride bytes apart
  std::uint64_t w_stride = 0;
  std::int64_t rows = 0;
  int cols = 0;
  const float* x = nullptr;      // exact path: x[n_tok][cols]
  const std::byte* act = nullptr;  // int8 path: quantized rows, layout L
  act_layout L{};
  int n_tok = 0;
  float* y = nullptr;            // y[n_tok][rows]

  const std::byte* wrow(std::int64_t r) const { return w + std::uint64_t(r) * w_stride; }
  float& out(int t, std::int64_t r) const { return y[std::int64_t(t) * rows + r]; }
};

// Tile walker shared by the SIMD kernels: rows [rb, re) x all tokens, main tiles NR x NT, row
// tails one row at a time, token tails one token at a time. Every (row, token) output is computed
// by the same per-element instruction sequence whatever tile it falls in (each accumulator is
// private to its (row, token)), which is what makes the results batch invariant.
template <class Kernel, int NR, int NT>
inline void walk_tiles(const mm_task& k, std::int64_t rb, std::int64_t re) {
  std::int64_t r = rb;
  for (; r + NR <= re; r += NR) {
    int t = 0;
    for (; t + NT <= k.n_tok; t += NT) Kernel::template tile<NR, NT>(k, r, t);
    for (; t < k.n_tok; ++t) Kernel::template tile<NR, 1>(k, r, t);
  }
  for (; r < re; ++r) {
    int t = 0;
    for (; t + NT <= k.n_tok; t += NT) Kernel::template tile<1, NT>(k, r, t);
    for (; t < k.n_tok; ++t) Kernel::template tile<1, 1>(k, r, t);
  }
}

}  // namespace gemmaforge::cpu::detail
