#pragma once
// RMSNorm rows: y = (x * r) * g with r = 1 / sqrt(sum_squares(x) / n + eps), math::rmsnorm_row bit for
// bit: the sum of squares in the canonical order (lane = column % 16, fmaf ascending, tree_sum16),
// one IEEE division and a correctly rounded sqrtf (nvcc's defaults -prec-div/-prec-sqrt=true).
// Gains are the bound g = 1 + w (model/weights.hpp).
//
// Mappings (the same bits: only who loads and who scales changes, never the order of a sum):
//   many rows (prefill, QK-norm: rows = tokens x heads)  one half-warp per row, its 16 threads are the
//       16 canonical lanes, 16 rows per block;
//   few rows (decode: rows <= norm_row_block_max_rows)   one block of 256 threads per row: all
//       threads stage the row into shared memory (one coalesced pass, also the residual add), the
//       first warp runs the 16 canonical chains from shared memory, all threads scale. Review
//       finding C7: with a half-warp per row a 2560-column decode row was 160 dependent global
//       loads on 16 threads while the rest of the GPU idled (not measured: no GPU was available;
//       bench_cuda_norm's decode shapes size it).
// A row's 16 chains cannot be split further without changing the order.
//
// launch_add_rms_norm fuses the residual add in front: x += y (stored), out = norm(x). The sum is
// one rounding, as the separate add kernel, so fused and unfused give the same bits.
#include <cuda_runtime.h>

#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/core/error.hpp>

namespace gemmaforge::cuda {

namespace detail {

inline constexpr int norm_threads = 256;  // 16 rows per block

template <bool AddResidual>
__global__ void __launch_bounds__(norm_threads)
    rms_norm_kernel(float* __restrict__ x, const float* __restrict__ residual_in, const float* __restrict__ gain,
                    int rows, int cols, float eps, float* out) {
  const int l = int(threadIdx.x) % 16;
  const std::int64_t r = std::int64_t(blockIdx.x) * (norm_threads / 16) + threadIdx.x / 16;
  const bool active = r < rows;
  float* xr = x + (active ? r : 0) * cols;
  float ss = 0.0f;
  if (active) {
    for (int c = l; c < cols; c += 16) {
      float v = xr[c];
      if constexpr (AddResidual) {
        v = __fadd_rn(v, residual_in[r * cols + c]);
        xr[c] = v;
      }
      ss = fmaf(v, v, ss);
    }
  }
  ss = half_warp_tree_sum16(ss);
  ss = __shfl_sync(full_warp_mask, ss, 0, 16);
  if (!active) return;
  const float mean = __fdiv_rn(ss, float(cols));
  const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean, eps)));
  float* o = out + r * cols;
  for (int c = l; c < cols; c += 16) o[c] = __fmul_rn(__fmul_rn(xr[c], inv), gain[c]);
}

inline constexpr int norm_row_block_max_rows = 64;             // decode batches
inline constexpr int norm_row_block_max_cols = 48 * 1024 / 4;  // the row fits the default shared memory

template <bool AddResidual>
__global__ void __launch_bounds__(norm_threads)
    rms_norm_row_kernel(float* __restrict__ x, const float* __restrict__ residual_in, const float* __restrict__ gain,
                        int cols, float eps, float* out) {
  extern __shared__ float row_s[];  // [cols]
  __shared__ float inv_s;
  const std::int64_t r = blockIdx.x;
  float* xr = x + r * cols;
  for (int c = int(threadIdx.x); c < cols; c += norm_threads) {
    float v = xr[c];
    if constexpr (AddResidual) {
      v = __fadd_rn(v, residual_in[r * cols + c]);
      xr[c] = v;
    }
    row_s[c] = v;
  }
  __syncthreads();
  if (threadIdx.x < warp_size) {  // both half-warps run the 16 chains; shuffles need the full warp
    const int l = int(threadIdx.x) % 16;
    float ss = 0.0f;
#pragma unroll 4
    for (int c = l; c < cols; c += 16) ss = fmaf(row_s[c], row_s[c], ss);
    ss = half_warp_tree_sum16(ss);
    if (threadIdx.x == 0) {
      const float mean = __fdiv_rn(ss, float(cols));
      inv_s = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean, eps)));
    }
  }
  __syncthreads();
  const float inv = inv_s;
  float* o = out + r * cols;
  for (int c = int(threadIdx.x); c < cols; c += norm_threads) o[c] = __fmul_rn(__fmul_rn(row_s[c], inv), gain[c]);
}

template <bool AddResidual>
inline void launch_rms_norm_rows(float* x, const float* residual, const float* gain, int rows, int cols, float eps,
                                 float* out, cudaStream_t stream) noexcept {
  if (rows <= norm_row_block_max_rows && cols <= norm_row_block_max_cols) {
    rms_norm_row_kernel<AddResidual><<<unsigned(rows), norm_threads, std::size_t(cols) * 4, stream>>>(x, residual, gain,
                                                                                                      cols, eps, out);
  } else {
    rms_norm_kernel<AddResidual><<<unsigned(ceil_div(rows, norm_threads / 16)), norm_threads, 0, stream>>>(
        x, residual, gain, rows, cols, eps, out);
  }
}

}  // namespace detail

// in/out: [rows][cols] f32 (out may equal in), gain: [cols].
inline status launch_rms_norm(const float* in, const float* gain, int rows, int cols, float eps, float* out,
                              cudaStream_t stream) noexcept {
  if (in == nullptr || gain == nullptr || out == nullptr || rows < 0 || cols <= 0) return status::invalid_argument;
  if (rows == 0) return status::ok;
  detail::launch_rms_norm_rows<false>(const_cast<float*>(in), nullptr, gain, rows, cols, eps, out, stream);
  return detail::launch_status();
}

// x += residual (x updated in place), then out = rms_norm(x). out must not alias residual.
inline status launch_add_rms_norm(float* x, const float* residual, const float* gain, int rows, int cols, float eps,
                                  float* out, cudaStream_t stream) noexcept {
  if (x == nullptr || residual == nullptr || gain == nullptr || out == nullptr || rows < 0 || cols <= 0)
    return status::invalid_argument;
  if (rows == 0) return status::ok;
  detail::launch_rms_norm_rows<true>(x, residual, gain, rows, cols, eps, out, stream);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
