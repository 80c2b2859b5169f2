#pragma once
// GeGLU of Gemma's MLP, in place: gate[i] = gelu_tanh(gate[i]) * up[i], through math::geglu (the
// exp form of gelu_tanh with the portable exp_f32), so every element equals the CPU's bit for bit.
// Elementwise and bound by 12 bytes per element: float4 loads, a grid-stride loop.
#include <cuda_runtime.h>

#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/math/activation.hpp>

namespace gemmaforge::cuda {

namespace detail {

// A template (with nothing to vary) so that the header-only kernel has vague linkage: every
// translation unit may instantiate it without multiple-definition errors at link time.
template <int = 0>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void geglu_kernel(float* __restrict__ gate, const float* __restrict__ up, std::int64_t n) {
  const std::int64_t n4 = n / 4;
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    float4 g = reinterpret_cast<float4*>(gate)[i];
    const float4 u = reinterpret_cast<const float4*>(up)[i];
    g.x = math::geglu(g.x, u.x);
    g.y = math::geglu(g.y, u.y);
    g.z = math::geglu(g.z, u.z);
    g.w = math::geglu(g.w, u.w);
    reinterpret_cast<float4*>(gate)[i] = g;
  }
  for (std::int64_t i = 4 * n4 + std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    gate[i] = math::geglu(gate[i], up[i]);
}

// Blocks for an elementwise grid-stride loop over n elements (4 per thread step).
inline unsigned elementwise_blocks(std::int64_t n) {
  const std::int64_t b = ceil_div64(n / 4 + 1, 256);
  return unsigned(b < 4096 ? b : 4096);
}

}  // namespace detail

// gate, up: n f32 (16-byte aligned).
inline status launch_geglu(float* gate, const float* up, std::int64_t n, cudaStream_t stream) noexcept {
  if (gate == nullptr || up == nullptr || n < 0) return status::invalid_argument;
  if (n == 0) return status::ok;
  detail::geglu_kernel<><<<detail::elementwise_blocks(n), 256, 0, stream>>>(gate, up, n);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
