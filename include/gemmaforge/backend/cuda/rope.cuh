#pragma once
// Rotary embedding (NEOX / rotate_half pairs i, i + d/2) over [T][heads][head_dim] in place.
//
// Frequencies come from a table built once on the host with math::rope_inv_freq (base**e in double,
// rounded once; HF's f32 reciprocal and linear-scaling division), so the device never recomputes a
// pow whose last bit could differ from the host's. Per token and frequency the kernel computes
// angle = float(pos) * inv_freq and cos/sin in double rounded to f32, exactly math::rope_cos_sin, once,
// and rotates every head with it: x[i] = a*c - b*s, x[i + d/2] = b*c + a*s, each product rounded
// (no fma), as math::rope_apply. Double cos/sin run at 1/64 rate on a 4090, but a decode step needs
// only head_dim/2 of them per token.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/math/rope.hpp>

namespace gemmaforge::cuda {

// inv_freq[head_dim / 2] for one layer kind: base theta, positions multiplied by pos_scale
// (Gemma 3 4B+ global layers: 1/8, i.e. linear factor 8, folded into the frequencies).
inline std::vector<float> rope_inv_freq_table(int head_dim, double theta, float pos_scale) {
  std::vector<float> t(std::size_t(head_dim / 2));
  const float factor = pos_scale == 1.0f ? 1.0f : 1.0f / pos_scale;
  for (int i = 0; i < head_dim / 2; ++i) t[std::size_t(i)] = math::rope_inv_freq(i, head_dim, float(theta), factor);
  return t;
}

namespace detail {

// A template (with nothing to vary) so that the header-only kernel has vague linkage: every
// translation unit may instantiate it without multiple-definition errors at link time.
template <int = 0>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void rope_kernel(float* __restrict__ x, const std::int32_t* __restrict__ positions, int heads, int head_dim,
                            const float* __restrict__ inv_freq) {
  const std::int64_t t = blockIdx.x;
  const int half = head_dim / 2;
  const float p = float(positions[t]);
  for (int i = int(threadIdx.x); i < half; i += int(blockDim.x)) {
    const float angle = __fmul_rn(p, inv_freq[i]);
    const float c = float(cos(double(angle)));
    const float s = float(sin(double(angle)));
    for (int h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * head_dim;
      const float a = v[i], b = v[i + half];
      v[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
      v[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
    }
  }
}

}  // namespace detail

// x: [T][heads][head_dim] f32 in place; positions: [T] device; inv_freq: [head_dim / 2] device.
inline status launch_rope(float* x, const std::int32_t* positions, int T, int heads, int head_dim,
                          const float* inv_freq, cudaStream_t stream) noexcept {
  if (x == nullptr || positions == nullptr || inv_freq == nullptr || T < 0 || heads <= 0 || head_dim <= 0 ||
      head_dim % 2 != 0)
    return status::invalid_argument;
  if (T == 0) return status::ok;
  const int threads = head_dim / 2 < 128 ? (head_dim / 2 + 31) / 32 * 32 : 128;
  detail::rope_kernel<><<<unsigned(T), unsigned(threads), 0, stream>>>(x, positions, heads, head_dim, inv_freq);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
