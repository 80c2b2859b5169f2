#pragma once
// Token embedding: out[t][c] = E[tokens[t]][c] * scale, for every weight format.
// `scale` is Gemma's sqrt(hidden) already rounded to the activation dtype by the caller
// (runtime/forward.hpp: 45.25 for a bf16 Gemma 2B, not 45.2548); the product is one f32 rounding,
// as in the reference and the naive executor. Rows are dequantized with weight_load.cuh's load8,
// the exact values of math::dequantize_block. One block per token row, 8 columns per thread step
// (two float4 stores); hidden sizes are multiples of 16 (descriptor static_assert).
#include <cuda_runtime.h>

#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/matvec.cuh>
#include <gemmaforge/backend/cuda/weight_load.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/tensor.hpp>

namespace gemmaforge::cuda {

namespace detail {

inline constexpr int embed_threads = 128;

template <tensor_format F>
__global__ void __launch_bounds__(embed_threads)
    embed_kernel(const std::byte* __restrict__ table, std::uint64_t row_stride, int vocab, int cols,
                 const std::int32_t* __restrict__ tokens, float scale, float* __restrict__ out) {
  const std::int64_t t = blockIdx.x;
  const int tok = tokens[t];
  float* o = out + t * cols;
  // An id outside the vocabulary (the engine validates ids before they get here) gives zeros
  // rather than a read out of bounds.
  const bool ok = tok >= 0 && tok < vocab;
  const std::byte* row = table + std::uint64_t(ok ? tok : 0) * row_stride;
  for (int c0 = int(threadIdx.x) * 8; c0 < cols; c0 += embed_threads * 8) {
    float v[8];
    load8<F>(row, c0, v);
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = ok ? __fmul_rn(v[e], scale) : 0.0f;
    reinterpret_cast<float4*>(o + c0)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(o + c0)[1] = make_float4(v[4], v[5], v[6], v[7]);
  }
}

template <tensor_format F>
struct embed_launch {
  static status run(const weight_view& e, const std::int32_t* tokens, int T, float scale, float* out, cudaStream_t s) {
    embed_kernel<F><<<unsigned(T), embed_threads, 0, s>>>(e.data, e.row_stride(), int(e.rows), int(e.cols), tokens, scale, out);
    return launch_status();
  }
};

}  // namespace detail

// tokens: [T] device ids; out: [T][e.cols] f32.
inline status launch_embed(const weight_view& e, const std::int32_t* tokens, int T, float scale, float* out,
                           cudaStream_t stream) noexcept {
  if (e.data == nullptr || tokens == nullptr || out == nullptr || T < 0 || e.cols % 8 != 0 ||
      e.cols % std::int64_t(block_elems(e.format)) != 0)
    return status::invalid_argument;
  if (T == 0) return status::ok;
  return detail::dispatch_format<detail::embed_launch>(e.format, e, tokens, T, scale, out, stream);
}

}  // namespace gemmaforge::cuda
