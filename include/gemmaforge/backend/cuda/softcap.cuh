#pragma once
// Final-logit soft-capping (Gemma 2: cap 30), in place: x = cap * tanh(x / cap) computed as
// math::softcap_exp (portable exp, same bits as the CPU). Runs over the logits rows only (a few
// rows of 256k); attention-logit capping happens inside attention.cuh.
#include <cuda_runtime.h>

#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/geglu.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/math/softcap.hpp>

namespace gemmaforge::cuda {

namespace detail {

// A template (with nothing to vary) so that the header-only kernel has vague linkage: every
// translation unit may instantiate it without multiple-definition errors at link time.
template <int = 0>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void softcap_kernel(float* __restrict__ x, std::int64_t n, float cap) {
  const std::int64_t stride = std::int64_t(gridDim.x) * blockDim.x;
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    x[i] = math::softcap_exp(x[i], cap);
}

}  // namespace detail

inline status launch_softcap(float* x, std::int64_t n, float cap, cudaStream_t stream) noexcept {
  if (x == nullptr || n < 0 || !(cap > 0.0f)) return status::invalid_argument;
  if (n == 0) return status::ok;
  detail::softcap_kernel<><<<detail::elementwise_blocks(4 * n), 256, 0, stream>>>(x, n, cap);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
