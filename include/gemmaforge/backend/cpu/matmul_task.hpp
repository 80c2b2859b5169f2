#pragma once
// What one matmul call hands to the per-ISA kernels (internal to backend/cpu).
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <gemmaforge/backend/cpu/act_quant.hpp>
#include <gemmaforge/backend/cpu/x86_intrin.hpp>
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
  bool block_sums = false;       // a block-sums mode: math::dot_block_sums's order
  int n_tok = 0;
  float* y = nullptr;            // y[n_tok][rows]
  // 0: walk_tiles takes each row tile across all tokens (decode, few tokens). > 0: the GEMM
  // order (walk_tiles below): panels of this many rows (a multiple of 16), tokens outer.
  int panel_rows = 0;

  const std::byte* wrow(std::int64_t r) const { return w + std::uint64_t(r) * w_stride; }
  float& out(int t, std::int64_t r) const { return y[std::int64_t(t) * rows + r]; }
};

// Software prefetch of the weights. A tile reads NR rows side by side, i.e. NR interleaved
// streams, which the hardware prefetcher of the EPYC (Zen 4) does not follow: a 4-row Q8_0
// matvec streamed 5-7 GB/s without help and 15-16 GB/s (the 1-thread stream bandwidth) with it
// (262144 x 640 LM head, 1 thread). While a tile is computed, its kernel spreads prefetches of
// the region one tile (at least 8 KiB) ahead over its main loop, into L2 (T2 hint): a single
// burst per tile was as good for small tiles but lost ~30% on 2048-column rows. Only the first
// token tile of a row tile prefetches (the others reuse the rows). Prefetches never fault, so
// running past the matrix is harmless.
struct tile_prefetch {
  const char* p = nullptr;
  const char* end = nullptr;
  int lines = 0;  // per step

  tile_prefetch(const mm_task& k, std::int64_t r0, int nr, int steps, bool enabled) {
    if (!enabled || steps <= 0) return;
    const std::size_t bytes = std::size_t(nr) * k.w_stride;
    const std::size_t dist = bytes > 8192 ? bytes : 8192;
    p = reinterpret_cast<const char*>(k.wrow(r0)) + dist;
    end = p + bytes;
    lines = int((bytes / 64 + std::size_t(steps)) / std::size_t(steps));
  }
  GF_FORCEINLINE void step() {
#if GF_X86
    for (int i = 0; i < lines && p < end; ++i, p += 64) _mm_prefetch(p, _MM_HINT_T2);
#endif
  }
};

// Tile walker shared by the SIMD kernels: rows [rb, re) x all tokens, main tiles NR x NT, row
// tails one row at a time, token tails one token at a time. Every (row, token) output is computed
// by the same per-element instruction sequence whatever tile it falls in (each accumulator is
// private to its (row, token)), which is what makes the results batch invariant, and what lets
// the walk order change freely:
//   panel_rows == 0 (decode): each row tile runs across all tokens; its weights stay in L1.
//   panel_rows > 0 (GEMM): the rows are cut into panels whose weights fit L2 (~96 KiB); within a
//     panel the token tiles are outer and the row tiles inner, so one token tile's quantized
//     activations (NT rows, 4-11 KiB at 640 columns) stay in L1 while the panel's rows stream from
//     L2, and all T activation rows (1.4 MiB for 512 tokens at 640 columns, 15-bit) are read once
//     per panel instead of once per row tile: at T = 512 that was L3 traffic of ~350 bytes per
//     weight byte.
template <class Kernel, int NR, int NT>
inline void walk_rows_outer(const mm_task& k, std::int64_t rb, std::int64_t re) {
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

template <class Kernel, int NR, int NT>
inline void walk_tokens_outer(const mm_task& k, std::int64_t rb, std::int64_t re) {
  auto rows = [&](int t, auto nt) {
    std::int64_t r = rb;
    for (; r + NR <= re; r += NR) Kernel::template tile<NR, decltype(nt)::value>(k, r, t);
    for (; r < re; ++r) Kernel::template tile<1, decltype(nt)::value>(k, r, t);
  };
  int t = 0;
  for (; t + NT <= k.n_tok; t += NT) rows(t, std::integral_constant<int, NT>{});
  for (; t < k.n_tok; ++t) rows(t, std::integral_constant<int, 1>{});
}

template <class Kernel, int NR, int NT>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not match
inline void walk_tiles(const mm_task& k, std::int64_t rb, std::int64_t re) {
  if (k.panel_rows <= 0) return walk_rows_outer<Kernel, NR, NT>(k, rb, re);
  for (std::int64_t p = rb; p < re; p += k.panel_rows) walk_tokens_outer<Kernel, NR, NT>(k, p, p + k.panel_rows < re ? p + k.panel_rows : re);
}

}  // namespace gemmaforge::cpu::detail
