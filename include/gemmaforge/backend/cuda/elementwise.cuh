#pragma once
// Small glue kernels of the forward pass: the residual add (x += y, one rounding per element, same
// bits as the CPU) and the gather of the rows whose logits are wanted.
#include <cuda_runtime.h>

#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/geglu.cuh>
#include <gemmaforge/core/error.hpp>

namespace gemmaforge::cuda {

namespace detail {

// A template (with nothing to vary) so that the header-only kernel has vague linkage: every
// translation unit may instantiate it without multiple-definition errors at link time.
template <int = 0>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, std::int64_t n) {
  const std::int64_t n4 = n / 4;
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    float4 a = reinterpret_cast<float4*>(x)[i];
    const float4 b = reinterpret_cast<const float4*>(y)[i];
    a.x = __fadd_rn(a.x, b.x);
    a.y = __fadd_rn(a.y, b.y);
    a.z = __fadd_rn(a.z, b.z);
    a.w = __fadd_rn(a.w, b.w);
    reinterpret_cast<float4*>(x)[i] = a;
  }
  for (std::int64_t i = 4 * n4 + std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    x[i] = __fadd_rn(x[i], y[i]);
}

template <int = 0>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void gather_rows_kernel(const float* __restrict__ src, const std::int32_t* __restrict__ rows, int cols,
                                   float* __restrict__ dst) {
  const std::int64_t r = blockIdx.x;
  const float* s = src + std::int64_t(rows[r]) * cols;
  float* d = dst + r * cols;
  for (int c = int(threadIdx.x); c < cols; c += int(blockDim.x)) d[c] = s[c];
}

}  // namespace detail

// x += y over n floats (16-byte aligned).
inline status launch_add(float* x, const float* y, std::int64_t n, cudaStream_t stream) noexcept {
  if (x == nullptr || y == nullptr || n < 0) return status::invalid_argument;
  if (n == 0) return status::ok;
  detail::add_kernel<><<<detail::elementwise_blocks(n), 256, 0, stream>>>(x, y, n);
  return detail::launch_status();
}

// dst[r] = src[rows[r]] for r < n (rows: device indices); dst must not overlap src.
inline status launch_gather_rows(const float* src, const std::int32_t* rows, int n, int cols, float* dst,
                                 cudaStream_t stream) noexcept {
  if (src == nullptr || rows == nullptr || dst == nullptr || n < 0 || cols <= 0) return status::invalid_argument;
  if (n == 0) return status::ok;
  detail::gather_rows_kernel<><<<unsigned(n), 256, 0, stream>>>(src, rows, cols, dst);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
