#pragma once
// Decode matmul (a handful of token rows): y[t][r] = sum_c W[r][c] x[t][c] for every weight format,
// bound by the weight stream. Two numerical paths, the same two as the CPU backend
// (backend/cpu/matmul.hpp), each bit-identical to its math/ definition:
//   exact           weights dequantized in registers to f32 (math::dequantize_block), multiplied with
//                   the f32 activations in the canonical 16-lane order of math::dot_exact. Always
//                   used for f32/f16/bf16 weights.
//   int16_activations (quantized weights, the default of both backends) activations quantized per
//                   32-block to 15 bits held as two int8 digits by launch_quantize_activations
//                   (math::quantize_act_block15); each group of 4 products is 128 * dp4a(hi) +
//                   dp4a(lo), the exact integer math::dot_act sums, accumulated in its lane order.
//   int8_activations  the same with one 8-bit digit (math::quantize_act_block): one dp4a per group.
// So for a given precision the GPU computes the same bits as the CPU, for every row, whatever the
// batch: the order depends on the column index only (batch invariance by construction).
//
// The canonical order fixes 16 independent accumulation chains per output (lane = column % 16), so a
// row's work splits over at most 16 threads. A policy picks how many lanes each thread owns:
//   lanes_per_thread = 8  ("pair"):  two threads per row; a bf16 thread reads 16 bytes per chunk
//                                    (one 128-bit load), the pair covers 32 contiguous bytes, and
//                                    `unroll` chunks in flight cover whole 128-byte lines.
//   lanes_per_thread = 16 ("single"): one thread per row, two 128-bit loads per chunk; half the
//                                    threads, twice the registers: better when rows are many.
// Tuning numbers (rows per block, unroll) are first guesses from the memory-level-parallelism
// arithmetic (1 TB/s x ~600 ns latency ~ 600 KB in flight), not measurements: no GPU was available
// when this was written. bench/cuda/bench_cuda_matvec.cu measures both.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/scratch.hpp>
#include <gemmaforge/backend/cuda/weight_load.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/matmul_precision.hpp>
#include <gemmaforge/core/tensor.hpp>
#include <gemmaforge/math/quant.hpp>
#include <gemmaforge/math/reduce.hpp>

namespace gemmaforge::cuda {

// core/matmul_precision.hpp: this backend runs int8, int16 (two int8 digit planes) and exact;
// the executor refuses int16_block_sums (CPU-only for now).
using gemmaforge::matmul_precision;

// int8 planes a quantized activation row takes (scratch.hpp's act_quant_bytes): 0 for exact.
constexpr int act_digits(matmul_precision p) {
  return p == matmul_precision::int16_activations ? 2 : p == matmul_precision::int8_activations ? 1 : 0;
}

template <int LanesPerThread, int RowsPerBlock, int Unroll>
struct matvec_policy {
  static_assert(LanesPerThread == 8 || LanesPerThread == 16, "a thread owns 8 or 16 of the 16 canonical lanes");
  static constexpr int lanes_per_thread = LanesPerThread;
  static constexpr int threads_per_row = 16 / LanesPerThread;
  static constexpr int rows_per_block = RowsPerBlock;
  static constexpr int threads = RowsPerBlock * threads_per_row;
  static constexpr int unroll = Unroll;  // 16-column chunks whose loads are issued before their FMAs
  static_assert(threads % warp_size == 0 && threads <= 1024, "whole warps per block");
};

// 64-thread blocks so that a 2048-row matrix (Gemma 2B's o/down projections) still spreads over 64
// blocks, i.e. half of a 4090's SMs, at batch 1 (not measured).
using matvec_policy_pair = matvec_policy<8, 32, 4>;
using matvec_policy_single = matvec_policy<16, 64, 2>;
using matvec_default_policy = matvec_policy_pair;

// Token rows one block computes per weight pass: weights are read once per tile of this many
// tokens. Decode batches are small; larger T goes through gemm.cuh.
inline constexpr int matvec_token_tile = 4;

// Quantized activations: [T][cols] int8 (the high digit, or the whole quant for 8 bits), the low
// digit plane for 15 bits (nullptr for 8), and per 32-block the scale dx and the integer sum of
// the quants (q4_k's min term needs it).
struct act_quant_view {
  std::int8_t* q = nullptr;    // [T][cols]
  std::int8_t* q2 = nullptr;   // [T][cols], 15-bit only: quant = 128 * q + q2
  float* dx = nullptr;         // [T][cols / 32]
  std::int32_t* xs = nullptr;  // [T][cols / 32]
};

// act_quant_bytes(T, cols, digits): backend/cuda/scratch.hpp (the planner sizes it too).
inline act_quant_view carve_act_quant(std::byte* p, int T, int cols, int digits) {
  const std::size_t nb = std::size_t(T) * std::size_t(cols / 32);
  auto up = [](std::size_t n) { return (n + 255) / 256 * 256; };
  act_quant_view v;
  v.q = reinterpret_cast<std::int8_t*>(p);
  p += up(std::size_t(T) * std::size_t(cols));
  if (digits == 2) {
    v.q2 = reinterpret_cast<std::int8_t*>(p);
    p += up(std::size_t(T) * std::size_t(cols));
  }
  v.dx = reinterpret_cast<float*>(p);
  p += up(nb * 4);
  v.xs = reinterpret_cast<std::int32_t*>(p);
  return v;
}

namespace detail {

// --------------------------------------------------------------------------- exact path
template <tensor_format F, class P, int NT>
__global__ void __launch_bounds__(P::threads)
    matvec_exact_kernel(const std::byte* __restrict__ w, std::uint64_t row_stride, int rows, int cols,
                        const float* __restrict__ x, int T, float* __restrict__ y) {
  constexpr int LPT = P::lanes_per_thread, TPO = P::threads_per_row, U = P::unroll;
  const int part = int(threadIdx.x) % TPO;
  const int r = int(blockIdx.x) * P::rows_per_block + int(threadIdx.x) / TPO;
  const int tok0 = int(blockIdx.y) * NT;
  const int ntok = min(NT, T - tok0);
  // Rows past the end compute row `rows - 1` again (every lane must join the shuffles) and do not store.
  const std::byte* wr = w + std::uint64_t(min(r, rows - 1)) * row_stride;
  float acc[NT][LPT];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int e = 0; e < LPT; ++e) acc[n][e] = 0.0f;

  const int chunks = cols / 16;
  for (int i0 = 0; i0 < chunks; i0 += U) {
    float wv[U][LPT];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (i0 + u < chunks) {
        const int c = 16 * (i0 + u) + part * LPT;
#pragma unroll
        for (int h = 0; h < LPT / 8; ++h) load8<F>(wr, c + 8 * h, &wv[u][8 * h]);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = 16 * (i0 + u) + part * LPT;
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        if (i0 + u >= chunks || n >= ntok) continue;
        const float* xr = x + std::int64_t(tok0 + n) * cols + c;
#pragma unroll
        for (int h = 0; h < LPT / 4; ++h) {
          const float4 xv = ldg_f4(xr + 4 * h);
          acc[n][4 * h + 0] = fmaf(wv[u][4 * h + 0], xv.x, acc[n][4 * h + 0]);
          acc[n][4 * h + 1] = fmaf(wv[u][4 * h + 1], xv.y, acc[n][4 * h + 1]);
          acc[n][4 * h + 2] = fmaf(wv[u][4 * h + 2], xv.z, acc[n][4 * h + 2]);
          acc[n][4 * h + 3] = fmaf(wv[u][4 * h + 3], xv.w, acc[n][4 * h + 3]);
        }
      }
    }
  }
#pragma unroll
  for (int n = 0; n < NT; ++n) {
    const float v = grouped_tree_sum16<LPT>(acc[n]);
    if (part == 0 && r < rows && n < ntok) y[std::int64_t(tok0 + n) * rows + r] = v;
  }
}

// ----------------------------------------------------------------- int8 / int16 path
// Wide: 15-bit activations as two digit planes (xq = 128 * q + q2); each group's integer sum is
// 128 * dp4a(w, q) + dp4a(w, q2), exact (|s| < 2^24) and equal to math::dot_act's.
// Lane of group j of block b: (b & 1) * 8 + j (math::dot_act). With two threads per row, thread p
// takes the blocks of parity p and so owns canonical lanes [8p, 8p + 8): contiguous ownership, the
// layout grouped_tree_sum16<8> expects. q4_k's eight min lanes (one per sub-block k = b % 8) follow
// the same parity split: thread p owns min lanes k = p, p + 2, p + 4, p + 6.
template <tensor_format F, class P, int NT, bool Wide>
__global__ void __launch_bounds__(P::threads)
    matvec_qact_kernel(const std::byte* __restrict__ w, std::uint64_t row_stride, int rows, int cols,
                        const std::int8_t* __restrict__ xq, const std::int8_t* __restrict__ xq2, const float* __restrict__ dx,
                        const std::int32_t* __restrict__ xsum, int T, float* __restrict__ y) {
  constexpr int LPT = P::lanes_per_thread, TPO = P::threads_per_row, U = P::unroll;
  constexpr bool has_min = F == tensor_format::q4_k;
  constexpr int MLANES = 8 / TPO;
  static_assert(TPO == 2 || U % 2 == 0, "one thread per row needs an even unroll (block parity = u parity)");
  const int part = int(threadIdx.x) % TPO;
  const int r = int(blockIdx.x) * P::rows_per_block + int(threadIdx.x) / TPO;
  const int tok0 = int(blockIdx.y) * NT;
  const int ntok = min(NT, T - tok0);
  const std::byte* wr = w + std::uint64_t(min(r, rows - 1)) * row_stride;
  const int nb = cols / 32;

  float lane[NT][LPT];
  float mlane[NT][MLANES];
#pragma unroll
  for (int n = 0; n < NT; ++n) {
#pragma unroll
    for (int e = 0; e < LPT; ++e) lane[n][e] = 0.0f;
#pragma unroll
    for (int e = 0; e < MLANES; ++e) mlane[n][e] = 0.0f;
  }

  for (int b0 = part; b0 < nb; b0 += U * TPO) {
    q32_block blk[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (b0 + u * TPO < nb) blk[u] = load_q32<F>(wr, b0 + u * TPO);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int b = b0 + u * TPO;
      // b & 1 == u & 1 for one thread per row (b0 starts at 0 and steps by an even U): a
      // compile-time lane index, so the lanes stay in registers.
      const int lane_base = TPO == 1 ? (u & 1) * 8 : 0;
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        if (b >= nb || n >= ntok) continue;
        const std::int64_t t = tok0 + n;
        const std::int8_t* xr = xq + t * cols + 32 * b;
        const uint4 xa = ldg16(xr), xb = ldg16(xr + 16);
        const int xw[8] = {int(xa.x), int(xa.y), int(xa.z), int(xa.w), int(xb.x), int(xb.y), int(xb.z), int(xb.w)};
        int xw2[8] = {};
        if constexpr (Wide) {
          const std::int8_t* xr2 = xq2 + t * cols + 32 * b;
          const uint4 ya = ldg16(xr2), yb = ldg16(xr2 + 16);
          const int y[8] = {int(ya.x), int(ya.y), int(ya.z), int(ya.w), int(yb.x), int(yb.y), int(yb.z), int(yb.w)};
#pragma unroll
          for (int j = 0; j < 8; ++j) xw2[j] = y[j];
        }
        const float d = __ldg(dx + t * nb + b);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int s = Wide ? 128 * __dp4a(blk[u].q[j], xw[j], 0) + __dp4a(blk[u].q[j], xw2[j], 0)
                             : __dp4a(blk[u].q[j], xw[j], 0);
          lane[n][lane_base + j] = fmaf(float(s) * d, j < 4 ? blk[u].ws_lo : blk[u].ws_hi, lane[n][lane_base + j]);
        }
        if constexpr (has_min) {
          const int k = b % 8;
          const float xs = d * float(__ldg(xsum + t * nb + b));
          const int mi = TPO == 1 ? k : k / 2;
          // A run-time index into a register array would spill it to local memory: predicate instead.
#pragma unroll
          for (int e = 0; e < MLANES; ++e)
            if (e == mi) mlane[n][e] = fmaf(blk[u].mterm, xs, mlane[n][e]);
        }
      }
    }
  }

#pragma unroll
  for (int n = 0; n < NT; ++n) {
    float v = grouped_tree_sum16<LPT>(lane[n]);
    if constexpr (has_min) {
      float m;
      if constexpr (TPO == 1) {
        m = local_tree<8>(mlane[n]);  // = math::tree_sum8
      } else {
        // Thread p holds min lanes p, p + 2, p + 4, p + 6 as mlane[0..3]: the tree's w = 4 and
        // w = 2 steps stay in the thread, w = 1 adds the partner's lane 1 to lane 0.
        mlane[n][0] = __fadd_rn(mlane[n][0], mlane[n][2]);
        mlane[n][1] = __fadd_rn(mlane[n][1], mlane[n][3]);
        mlane[n][0] = __fadd_rn(mlane[n][0], mlane[n][1]);
        m = __fadd_rn(mlane[n][0], __shfl_down_sync(full_warp_mask, mlane[n][0], 1, 2));
      }
      v = __fsub_rn(v, m);
    }
    if (part == 0 && r < rows && n < ntok) y[std::int64_t(tok0 + n) * rows + r] = v;
  }
}

// One warp per 32-value block: math::quantize_act_block (Wide: quantize_act_block15), bit for bit
// (max is order-free, the scale is one IEEE division, rintf rounds half to even like cvtps2dq).
// A template, so that the header-only kernel has vague linkage: every translation unit may
// instantiate it without multiple-definition errors at link time.
template <bool Wide>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void quantize_act_kernel(const float* __restrict__ x, int T, int cols, std::int8_t* __restrict__ q,
                                    std::int8_t* __restrict__ q2, float* __restrict__ dx, std::int32_t* __restrict__ xs) {
  constexpr float qmax = Wide ? math::act_qmax15 : math::act_qmax8;
  const int nb = cols / 32;
  const std::int64_t blk = std::int64_t(blockIdx.x) * (blockDim.x / warp_size) + threadIdx.x / warp_size;
  if (blk >= std::int64_t(T) * nb) return;
  const int i = int(threadIdx.x) % warp_size;
  const std::int64_t t = blk / nb, b = blk % nb;
  const float v = x[t * cols + 32 * b + i];
  const float amax = warp_max(fabsf(v));
  const float id = amax > 0.0f ? qmax / amax : 0.0f;
  const int qi = int(rintf(v * id));
  if constexpr (Wide) {
    const int hi = (qi + 64) >> 7;  // arithmetic shift: floor, as math::quantize_act_block15
    q[t * cols + 32 * b + i] = std::int8_t(hi);
    q2[t * cols + 32 * b + i] = std::int8_t(qi - hi * 128);
  } else {
    q[t * cols + 32 * b + i] = std::int8_t(qi);
  }
  const int sum = warp_sum_int(qi);
  if (i == 0) {
    dx[blk] = amax / qmax;
    xs[blk] = sum;
  }
}

template <template <tensor_format> class Fn, class... Args>
status dispatch_format(tensor_format f, Args&&... args) {
  switch (f) {
    case tensor_format::f32: return Fn<tensor_format::f32>::run(args...);
    case tensor_format::f16: return Fn<tensor_format::f16>::run(args...);
    case tensor_format::bf16: return Fn<tensor_format::bf16>::run(args...);
    case tensor_format::q8_0: return Fn<tensor_format::q8_0>::run(args...);
    case tensor_format::q5_0: return Fn<tensor_format::q5_0>::run(args...);
    case tensor_format::q4_k: return Fn<tensor_format::q4_k>::run(args...);
    case tensor_format::q6_k: return Fn<tensor_format::q6_k>::run(args...);
  }
  return status::unsupported;
}

template <class P>
struct matvec_exact_launch {
  template <tensor_format F>
  struct fn {
    static status run(const weight_view& w, const float* x, int T, float* y, cudaStream_t s) {
      const dim3 block(P::threads);
      if (T == 1) {
        const dim3 grid(unsigned(ceil_div64(w.rows, P::rows_per_block)), 1);
        matvec_exact_kernel<F, P, 1><<<grid, block, 0, s>>>(w.data, w.row_stride(), int(w.rows), int(w.cols), x, T, y);
      } else {
        const dim3 grid(unsigned(ceil_div64(w.rows, P::rows_per_block)), unsigned(ceil_div(T, matvec_token_tile)));
        matvec_exact_kernel<F, P, matvec_token_tile>
            <<<grid, block, 0, s>>>(w.data, w.row_stride(), int(w.rows), int(w.cols), x, T, y);
      }
      return launch_status();
    }
  };
};

template <class P>
struct matvec_qact_launch {
  template <tensor_format F>
  struct fn {
    template <bool Wide>
    static void launch(const weight_view& w, const act_quant_view& a, int T, float* y, cudaStream_t s) {
      const dim3 block(P::threads);
      if (T == 1) {
        const dim3 grid(unsigned(ceil_div64(w.rows, P::rows_per_block)), 1);
        matvec_qact_kernel<F, P, 1, Wide>
            <<<grid, block, 0, s>>>(w.data, w.row_stride(), int(w.rows), int(w.cols), a.q, a.q2, a.dx, a.xs, T, y);
      } else {
        const dim3 grid(unsigned(ceil_div64(w.rows, P::rows_per_block)), unsigned(ceil_div(T, matvec_token_tile)));
        matvec_qact_kernel<F, P, matvec_token_tile, Wide>
            <<<grid, block, 0, s>>>(w.data, w.row_stride(), int(w.rows), int(w.cols), a.q, a.q2, a.dx, a.xs, T, y);
      }
    }
    static status run(const weight_view& w, const act_quant_view& a, int T, float* y, cudaStream_t s) {
      if constexpr (!is_block_quantized(F)) {
        return status::unsupported;
      } else {
        if (a.q2 != nullptr) launch<true>(w, a, T, y, s);
        else launch<false>(w, a, T, y, s);
        return launch_status();
      }
    }
  };
};

inline bool valid_matmul_shape(const weight_view& w, int T) {
  return w.data != nullptr && T > 0 && w.rows > 0 && w.cols > 0 && w.cols % 32 == 0 &&
         w.cols % std::int64_t(block_elems(w.format)) == 0 && w.cols < (std::int64_t(1) << 31) &&
         w.rows < (std::int64_t(1) << 31);
}

}  // namespace detail

// ------------------------------------------------------------------------------ launchers
// x: [T][w.cols] f32, y: [T][w.rows] f32, device memory; y must not alias x. cols % 32 == 0.
template <class Policy = matvec_default_policy>
status launch_matvec_exact(const weight_view& w, const float* x, int T, float* y, cudaStream_t stream) noexcept {
  if (!detail::valid_matmul_shape(w, T) || x == nullptr || y == nullptr) return status::invalid_argument;
  return detail::dispatch_format<detail::matvec_exact_launch<Policy>::template fn>(w.format, w, x, T, y, stream);
}

// x: [T][cols] f32 -> act (act_quant_bytes(T, cols, digits) bytes carved by carve_act_quant; 15-bit
// when act.q2 is set, 8-bit otherwise). cols % 32 == 0.
inline status launch_quantize_activations(const float* x, int T, int cols, const act_quant_view& act,
                                          cudaStream_t stream) noexcept {
  if (x == nullptr || act.q == nullptr || T <= 0 || cols <= 0 || cols % 32 != 0) return status::invalid_argument;
  constexpr int warps = 8;
  const std::int64_t blocks = std::int64_t(T) * (cols / 32);
  const unsigned grid = unsigned(detail::ceil_div64(blocks, warps));
  if (act.q2 != nullptr)
    detail::quantize_act_kernel<true><<<grid, warps * warp_size, 0, stream>>>(x, T, cols, act.q, act.q2, act.dx, act.xs);
  else
    detail::quantize_act_kernel<false><<<grid, warps * warp_size, 0, stream>>>(x, T, cols, act.q, nullptr, act.dx, act.xs);
  return detail::launch_status();
}

// Quantized weights x quantized activations (already quantized by launch_quantize_activations;
// 15-bit when act.q2 is set).
template <class Policy = matvec_default_policy>
status launch_matvec_qact(const weight_view& w, const act_quant_view& act, int T, float* y, cudaStream_t stream) noexcept {
  if (!detail::valid_matmul_shape(w, T) || !is_block_quantized(w.format) || y == nullptr || act.q == nullptr)
    return status::invalid_argument;
  return detail::dispatch_format<detail::matvec_qact_launch<Policy>::template fn>(w.format, w, act, T, y, stream);
}

}  // namespace gemmaforge::cuda
