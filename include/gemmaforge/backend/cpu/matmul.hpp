#pragma once
// y[t][r] = sum_c W[r][c] * x[t][c] for a weight matrix in any storage format (f32, f16, bf16,
// q8_0, q5_0, q4_k, q6_k), f32 accumulation, threaded over output rows.
//
//   cpu::matmul(pool, W, x, n_rows_x, y);              // x: [n_rows_x][W.cols], y: [n_rows_x][W.rows]
//   cpu::matmul(pool, W, x, n, y, {.precision = cpu::matmul_precision::exact});
//
// n_rows_x = 1 is decode (a matvec, bound by weight bandwidth); larger n is prefill: the kernels
// decode a weight block once for several activation rows and keep it in registers. From
// gemm_min_rows (8) rows on, the GEMM schedule: weight panels that stay in L2, token tiles outer,
// 3x8 (15-bit) / 4x6 (8-bit) AVX-512 register tiles, threads by panel (docs/kernels.md). It needs
// no scratch beyond the quantized activations and gives the same bits as the matvec path.
//
// Three precisions for block-quantized weights (f32/f16/bf16 weights always use the exact path):
//   int8_activations: each 32-value block of x is quantized to int8 (scale amax/127)
//     and multiplied with integer dot products (AVX-512 VNNI vpdpbusd, AVX2 maddubs), the way
//     production engines do. On Gemma 3 270M's LM head (tests/unit/cpu_model_test.cpp) the logits
//     differ from the exact path by up to 0.20-0.28 (rms 0.04-0.06) for logits of magnitude 22-32.
//   int16_activations (default): 15-bit activations (scale amax/16256) held as two int8 digits,
//     two integer passes: ~128x less activation rounding (LM head logits within 0.0014-0.0024 of the exact
//     path), at 1.2-1.4x the int8 path's compute (Zen 4, L2-resident weights).
//   exact: weights are dequantized to f32 and multiplied with the f32 activations (compute bound
//     for the k-quants and Q5_0 on this CPU: 6-8 GB/s of weights per core).
//   int16_block_sums (opt-in): the same 15-bit activations, but one exact integer sum per
//     32-value block and one float step per block (math/quant.hpp dot_block_sums), so the GEMM
//     (T >= gemm_min_rows, AVX-512 VNNI) runs the packed kernel of gemm_block_sums.hpp and
//     fewer rows its decode kernel; AVX2 and scalar run the reference (same bits).
//     options.pack_scratch is the GEMM's planned scratch (gemm_pack_scratch_bytes).
//   int8_block_sums (opt-in): int8_activations' 8-bit activations in that block order: one VNNI
//     pass per block instead of two (the fastest GEMM; int8's accuracy).
// All follow a fixed summation order per element (math/quant.hpp: dot_exact, dot_act) that does
// not depend on n_rows_x, the row's place in the batch, the thread count, or the ISA: scalar,
// AVX2 and AVX-512 give the same bits (tested), so results are batch invariant.
//
// Threads: the pool's threads take contiguous row ranges (parts claimed dynamically). Nothing is
// allocated per call when options.scratch is given (matmul_scratch_bytes); without it the integer
// paths use a per-calling-thread buffer that only grows. Activations quantized once can be shared
// by several matmuls with the same input (q/k/v, gate/up): quantize_activations() + options.act_q.
// y must not alias x.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include <gemmaforge/backend/cpu/act_quant.hpp>
#include <gemmaforge/backend/cpu/cpu_features.hpp>
#include <gemmaforge/backend/cpu/gemm_block_sums.hpp>
#include <gemmaforge/backend/cpu/matmul_avx2.hpp>
#include <gemmaforge/backend/cpu/matmul_avx512.hpp>
#include <gemmaforge/backend/cpu/matmul_task.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/matmul_precision.hpp>
#include <gemmaforge/core/tensor.hpp>
#include <gemmaforge/math/quant.hpp>

namespace gemmaforge::cpu {

using gemmaforge::matmul_precision;  // core/matmul_precision.hpp

// Batches of at least this many rows take the GEMM walk order. GEMMAFORGE_GEMM_MIN_ROWS overrides
// it (read once; a huge value restores the pre-GEMM schedule, for A/B timing of one binary).
inline int default_gemm_min_rows() {
  static const int n = [] {
    const char* env = std::getenv("GEMMAFORGE_GEMM_MIN_ROWS");
    const long v = env ? std::strtol(env, nullptr, 10) : 0;
    return v > 0 && v <= 1000000000L ? int(v) : 8;
  }();
  return n;
}

struct matmul_options {
  // Default: 15-bit activations, near-exact logits (top-1 agreement with the f32 reference is what
  // the engine is tested on) at integer speed; int8_activations is faster, exact is slowest.
  matmul_precision precision = matmul_precision::int16_activations;
  cpu_isa isa = default_cpu_isa();
  // integer paths: >= matmul_scratch_bytes(cols, n_rows_x, precision) bytes, 64-byte aligned;
  // nullptr = an internal per-calling-thread buffer.
  std::byte* scratch = nullptr;
  // integer paths: x already quantized by quantize_activations() with the same precision.
  const std::byte* act_q = nullptr;
  // int16_block_sums GEMM: >= gemm_pack_scratch_bytes(cols, pool.size()) bytes, 64-byte aligned
  // (one packed 32-row weight unit per thread); nullptr = an internal per-calling-thread buffer.
  std::byte* pack_scratch = nullptr;
  // Batches of at least this many rows run the GEMM walk order (matmul_task.hpp: weight panels
  // that stay in L2, token tiles outer); fewer run the decode order. Same bits either way.
  int gemm_min_rows = default_gemm_min_rows();
};

// Rows per GEMM panel: ~96 KiB of weights (half the 1 MiB L2 of Zen 4 leaves room for the streamed
// activations), a multiple of 16, 16..512, and small enough that every thread gets >= 4 panels.
constexpr std::int64_t gemm_panel_rows(std::uint64_t w_row_bytes, std::int64_t rows, int threads) {
  const std::int64_t fit = std::int64_t((96u << 10) / (w_row_bytes > 0 ? w_row_bytes : 1)) / 16 * 16;
  const std::int64_t share = (rows / (4 * std::int64_t(threads > 0 ? threads : 1)) + 15) / 16 * 16;
  return std::clamp<std::int64_t>(std::min(fit, share), 16, 512);
}

// Bytes of quantized activations for n rows of `cols` values (the integer paths' scratch).
constexpr act_layout act_layout_for(int cols, matmul_precision p) {
  return make_act_layout(cols, has_wide_activations(p), is_block_sums(p));
}
constexpr std::size_t matmul_scratch_bytes(int cols, int n_rows_x, matmul_precision p = matmul_precision::int16_activations) {
  return act_layout_for(cols, p).row_bytes * std::size_t(n_rows_x);
}

// Does this (format, precision) run an integer path (int8 or int16 quantized activations)?
constexpr bool matmul_uses_quantized_activations(tensor_format f, matmul_precision p) {
  return is_block_quantized(f) && p != matmul_precision::exact;
}

namespace detail {

using rows_fn = void (*)(const mm_task&, std::int64_t, std::int64_t);

inline void rows_scalar(const mm_task& k, std::int64_t rb, std::int64_t re) {
  for (std::int64_t r = rb; r < re; ++r)
    for (int t = 0; t < k.n_tok; ++t) {
      if (k.act) {
        const act_row a = act_row_at(k.act, k.L, t);
        k.out(t, r) = k.block_sums ? math::dot_block_sums(k.fmt, k.wrow(r), a.q, a.q2, a.dx, k.L.nb)
                                   : math::dot_act(k.fmt, k.wrow(r), a.q, a.q2, a.dx, k.L.nb);
      } else {
        k.out(t, r) = math::dot_exact(k.fmt, k.wrow(r), k.x + std::int64_t(t) * k.cols, k.cols);
      }
    }
}

#if GF_X86
template <template <tensor_format, bool> class Rows, bool Int8, bool W>
constexpr rows_fn pick_format(tensor_format f) {
  switch (f) {
    case tensor_format::f32: return Int8 ? nullptr : &Rows<tensor_format::f32, W>::run;
    case tensor_format::f16: return Int8 ? nullptr : &Rows<tensor_format::f16, W>::run;
    case tensor_format::bf16: return Int8 ? nullptr : &Rows<tensor_format::bf16, W>::run;
    case tensor_format::q8_0: return &Rows<tensor_format::q8_0, W>::run;
    case tensor_format::q5_0: return &Rows<tensor_format::q5_0, W>::run;
    case tensor_format::q4_k: return &Rows<tensor_format::q4_k, W>::run;
    case tensor_format::q6_k: return &Rows<tensor_format::q6_k, W>::run;
  }
  return nullptr;
}

// Decode (< 4 tokens) uses 4-row x 1-token tiles; prefill the ISA's square-ish tiles. The tile
// shape never changes a result, only which loads are shared.
template <tensor_format F, bool W> struct avx512_exact_prefill { static void run(const mm_task& k, std::int64_t b, std::int64_t e) { walk_tiles<avx512::exact_k<F>, 4, 4>(k, b, e); } };
template <tensor_format F, bool W> struct avx512_exact_decode { static void run(const mm_task& k, std::int64_t b, std::int64_t e) { walk_tiles<avx512::exact_k<F>, 4, 1>(k, b, e); } };
template <tensor_format F, bool W> struct avx2_exact_prefill { static void run(const mm_task& k, std::int64_t b, std::int64_t e) { walk_tiles<avx2::exact_k<F>, 2, 2>(k, b, e); } };
template <tensor_format F, bool W> struct avx2_exact_decode { static void run(const mm_task& k, std::int64_t b, std::int64_t e) { walk_tiles<avx2::exact_k<F>, 4, 1>(k, b, e); } };

template <tensor_format F, bool W> struct avx512_int8_prefill {
  static void run(const mm_task& k, std::int64_t b, std::int64_t e) {
    if constexpr (F == tensor_format::q8_0 || F == tensor_format::q5_0) walk_tiles<avx512::int8_b32<F, W>, 4, 4>(k, b, e);
    else if constexpr (F == tensor_format::q4_k) walk_tiles<avx512::int8_q4_k<W>, 4, 2>(k, b, e);
    else if constexpr (F == tensor_format::q6_k) walk_tiles<avx512::int8_q6_k<W>, 4, 4>(k, b, e);
  }
};
template <tensor_format F, bool W> struct avx512_int8_decode {
  static void run(const mm_task& k, std::int64_t b, std::int64_t e) {
    if constexpr (F == tensor_format::q8_0 || F == tensor_format::q5_0) walk_tiles<avx512::int8_b32<F, W>, 4, 1>(k, b, e);
    else if constexpr (F == tensor_format::q4_k) walk_tiles<avx512::int8_q4_k<W>, 4, 1>(k, b, e);
    else if constexpr (F == tensor_format::q6_k) walk_tiles<avx512::int8_q6_k<W>, 4, 1>(k, b, e);
  }
};
// GEMM (panel order, T >= gemm_min_rows): wider token tiles than prefill's 4x4, so that each
// weight block is decoded once for more tokens (decoding is ~1/4 of a 4x4 tile's vector work for
// q5_0). 15-bit: 3 rows x 8 tokens (24 accumulators + 3 weight + 3 scale + 4 activation
// registers); 8-bit: 4 x 6; q4_k (which also keeps 8-lane min accumulators): 3 x 6 and 4 x 4.
// Chosen by bench_cpu_gemm (old order vs new, alternating) on the 2-core Zen 4 VM among 2x8, 3x8,
// 4x4, 4x6: 3x8 gained 1.1-1.4x at 15 bits and lost at 8 bits (one register short), 4x6 the reverse.
template <tensor_format F, bool W> struct avx512_int8_gemm {
  static constexpr int nr = W ? 3 : 4, nt = W ? 8 : 6, nr_k4 = W ? 3 : 4, nt_k4 = W ? 6 : 4;
  static void run(const mm_task& k, std::int64_t b, std::int64_t e) {
    if constexpr (F == tensor_format::q8_0 || F == tensor_format::q5_0) walk_tiles<avx512::int8_b32<F, W>, nr, nt>(k, b, e);
    else if constexpr (F == tensor_format::q4_k) walk_tiles<avx512::int8_q4_k<W>, nr_k4, nt_k4>(k, b, e);
    else if constexpr (F == tensor_format::q6_k) walk_tiles<avx512::int8_q6_k<W>, nr, nt>(k, b, e);
  }
};
template <tensor_format F, bool W> struct avx2_int8_prefill { static void run(const mm_task& k, std::int64_t b, std::int64_t e) { walk_tiles<avx2::int8_k<F, W>, 2, 2>(k, b, e); } };
template <tensor_format F, bool W> struct avx2_int8_decode { static void run(const mm_task& k, std::int64_t b, std::int64_t e) { walk_tiles<avx2::int8_k<F, W>, 4, 1>(k, b, e); } };
#endif

inline rows_fn select_rows_fn(cpu_isa isa, tensor_format f, bool int8, bool wide, bool decode, int cols, bool gemm = false) {
#if GF_X86
  // The SIMD exact path walks whole 16-column chunks; other widths (never in Gemma) run scalar.
  const bool simd_ok = int8 || cols % 16 == 0;
  if (isa == cpu_isa::avx512 && simd_ok) {
    if (int8 && gemm) return wide ? pick_format<avx512_int8_gemm, true, true>(f) : pick_format<avx512_int8_gemm, true, false>(f);
    if (int8 && wide) return decode ? pick_format<avx512_int8_decode, true, true>(f) : pick_format<avx512_int8_prefill, true, true>(f);
    if (int8) return decode ? pick_format<avx512_int8_decode, true, false>(f) : pick_format<avx512_int8_prefill, true, false>(f);
    return decode ? pick_format<avx512_exact_decode, false, false>(f) : pick_format<avx512_exact_prefill, false, false>(f);
  }
  if (isa == cpu_isa::avx2 && simd_ok) {
    if (int8 && wide) return decode ? pick_format<avx2_int8_decode, true, true>(f) : pick_format<avx2_int8_prefill, true, true>(f);
    if (int8) return decode ? pick_format<avx2_int8_decode, true, false>(f) : pick_format<avx2_int8_prefill, true, false>(f);
    return decode ? pick_format<avx2_exact_decode, false, false>(f) : pick_format<avx2_exact_prefill, false, false>(f);
  }
#else
  (void)isa; (void)f; (void)int8; (void)wide; (void)decode; (void)cols; (void)gemm;
#endif
  return &rows_scalar;
}

// A per-calling-thread buffer used when the caller passes no scratch (grows, never shrinks); Slot
// tells the quantized activations (0) from the packed weights (1).
template <int Slot = 0>
inline std::byte* fallback_scratch(std::size_t bytes) {
  struct buffer {
    std::byte* p = nullptr;
    std::size_t size = 0;
    ~buffer() { ::operator delete(p, std::align_val_t(64)); }
  };
  thread_local buffer buf;
  if (buf.size < bytes) {
    // Forget the old buffer before allocating: if the allocation throws, the thread's destructor
    // must not free it a second time (found by clang-tidy's analyzer).
    ::operator delete(buf.p, std::align_val_t(64));
    buf.p = nullptr;
    buf.size = 0;
    buf.p = static_cast<std::byte*>(::operator new(bytes, std::align_val_t(64)));
    buf.size = bytes;
  }
  // clang 14's analyzer runs a thread_local's destructor at the end of the function (false positive).
  return buf.p;  // NOLINT(clang-analyzer-cplusplus.NewDelete)
}

}  // namespace detail

// Quantize n rows of x ([n][cols], cols a multiple of 32) into dst (matmul_scratch_bytes(cols, n, p)
// bytes, 64-byte aligned) for matmul_options::act_q with the same precision p (int8 or int16
// activations). Bytes are identical for every ISA.
inline void quantize_activations(thread_pool& pool, const float* x, int n_rows, int cols, std::byte* dst,
                                 matmul_precision p = matmul_precision::int16_activations, cpu_isa isa = default_cpu_isa()) {
  isa = clamp_cpu_isa(isa);
  const act_layout L = act_layout_for(cols, p);
  auto quant = [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) quantize_act_row(isa, x + t * cols, L, dst + std::size_t(t) * L.row_bytes);
  };
  if (n_rows >= 4 && pool.size() > 1) pool.parallel_for(n_rows, quant);
  else quant(0, n_rows);
}

inline void matmul(thread_pool& pool, const weight_view& W, const float* x, int n_rows_x, float* y,
                   const matmul_options& opt = {}) {
  if (n_rows_x <= 0 || W.rows <= 0) return;
  if (W.cols % std::int64_t(block_elems(W.format)) != 0)
    throw error(errc::invalid_argument, "matmul: columns are not a multiple of the format's block size");
  const cpu_isa isa = clamp_cpu_isa(opt.isa);
  const bool int8 = matmul_uses_quantized_activations(W.format, opt.precision);
  const bool block_sums = int8 && is_block_sums(opt.precision);
  const bool wide = has_wide_activations(opt.precision);
  detail::mm_task k;
  k.fmt = W.format;
  k.w = W.data;
  k.w_stride = W.row_stride();
  k.rows = W.rows;
  k.cols = int(W.cols);
  k.n_tok = n_rows_x;
  k.y = y;
  k.x = x;
  if (int8) {
    k.L = act_layout_for(k.cols, opt.precision);
    k.block_sums = block_sums;
    if (opt.act_q) {
      k.act = opt.act_q;
    } else {
      std::byte* buf = opt.scratch ? opt.scratch : detail::fallback_scratch(matmul_scratch_bytes(k.cols, n_rows_x, opt.precision));
      quantize_activations(pool, x, n_rows_x, k.cols, buf, opt.precision, isa);
      k.act = buf;
    }
  }
  const bool gemm = n_rows_x >= opt.gemm_min_rows;
#if GF_X86
  if (block_sums && gemm && isa == cpu_isa::avx512) {
    std::byte* pack = opt.pack_scratch ? opt.pack_scratch
                                       : detail::fallback_scratch<1>(gemm_pack_scratch_bytes(k.cols, pool.size()));
    gemm_block_sums_avx512(pool, k, pack);
    return;
  }
#endif
  // The block-sums modes: fewer rows on AVX-512 run their decode kernel; other ISAs run the
  // reference (same bits).
  detail::rows_fn fn = block_sums ? &detail::rows_scalar
                                  : detail::select_rows_fn(isa, W.format, int8, wide, n_rows_x < 4, k.cols, gemm);
#if GF_X86
  if (block_sums && isa == cpu_isa::avx512 && !gemm) fn = detail::pick_bsum_decode(W.format, wide);
#endif
  if (gemm) {
    // GEMM: the threads claim whole panels (output tiles of panel_rows x all tokens).
    const std::int64_t panel = gemm_panel_rows(k.w_stride, W.rows, pool.size());
    k.panel_rows = int(panel);
    pool.parallel_for((W.rows + panel - 1) / panel, 1, [&](std::int64_t b, std::int64_t e) {
      fn(k, b * panel, std::min(e * panel, W.rows));
    });
    return;
  }
  // Rows go out in units of 16 (a multiple of every tile height), ~8 contiguous parts per thread:
  // each part streams one slice of the matrix, and a thread that is descheduled on a busy
  // machine leaves its remaining parts to the others.
  constexpr std::int64_t unit = 16;
  const std::int64_t units = (W.rows + unit - 1) / unit;
  const std::int64_t grain = std::max<std::int64_t>(1, units / (8 * pool.size()));
  pool.parallel_for(units, grain, [&](std::int64_t b, std::int64_t e) { fn(k, b * unit, std::min(e * unit, W.rows)); });
}

}  // namespace gemmaforge::cpu
