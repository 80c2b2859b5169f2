#pragma once
// RMSNorm rows: y = (x * r) * g with r = 1 / sqrt(sum_squares(x) / n + eps), math::rmsnorm_row bit for
// bit: the sum of squares in the canonical order (lane = column % 16, fmaf ascending, tree_sum16),
// one IEEE division and a correctly rounded sqrtf (nvcc's defaults -prec-div/-prec-sqrt=true).
// Gains are the bound g = 1 + w (model/weights.hpp).
//
// Mapping: one half-warp per row, its 16 threads are the 16 canonical lanes. The same kernel serves
// hidden-size rows and Gemma 3's QK-norm (rows = tokens x heads, cols = head_dim = 256 or 128).
// A row's 16 chains cannot be split further without changing the order, which bounds a single row
// at 16 threads; decode norms are a few microseconds, far below the matmuls around them.
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

}  // namespace detail

// in/out: [rows][cols] f32 (out may equal in), gain: [cols].
inline status launch_rms_norm(const float* in, const float* gain, int rows, int cols, float eps, float* out,
                              cudaStream_t stream) noexcept {
  if (in == nullptr || gain == nullptr || out == nullptr || rows < 0 || cols <= 0) return status::invalid_argument;
  if (rows == 0) return status::ok;
  detail::rms_norm_kernel<false><<<unsigned(detail::ceil_div(rows, detail::norm_threads / 16)), detail::norm_threads, 0,
                                   stream>>>(const_cast<float*>(in), nullptr, gain, rows, cols, eps, out);
  return detail::launch_status();
}

// x += residual (x updated in place), then out = rms_norm(x). out must not alias residual.
inline status launch_add_rms_norm(float* x, const float* residual, const float* gain, int rows, int cols, float eps,
                                  float* out, cudaStream_t stream) noexcept {
  if (x == nullptr || residual == nullptr || gain == nullptr || out == nullptr || rows < 0 || cols <= 0)
    return status::invalid_argument;
  if (rows == 0) return status::ok;
  detail::rms_norm_kernel<true><<<unsigned(detail::ceil_div(rows, detail::norm_threads / 16)), detail::norm_threads, 0,
                                  stream>>>(x, residual, gain, rows, cols, eps, out);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
