#pragma once
// Encoding this step's K/V vectors through the KV codec (kv/kv_codec.hpp), into
//   the pool    (launch_kv_append: after a layer's attention, at kv_cache_view::offset(position, head)), or
//   a staging area [T][kv_heads][head_dim] (launch_kv_stage: before attention, which reads the
//               chunk's own keys from there so they are the values the cache will hold).
// Both run the same kernel, so a key attention saw fresh and the key it later reads from the cache
// are the same bits. Per (row, head) vector: scale = kv_vector_scale (amax / 448 for fp8, / 127 for
// int8, 1 otherwise; max is order-free), inv = 1 / scale, element = kv_encode(x, inv).
#include <cuda_runtime.h>

#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/step_meta.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/kv/kv_codec.hpp>

namespace gemmaforge::cuda {

namespace detail {

inline constexpr int kv_encode_threads = 128;

// One block per (row, kv head) encodes that head's K and V vectors.
// ToCache: destination is the pool (position = seq.start + row - seq.first_row); else the staging rows.
template <class KvElem, bool ToCache>
__global__ void __launch_bounds__(kv_encode_threads)
    kv_encode_kernel(const float* __restrict__ k, const float* __restrict__ v, const device_seq* __restrict__ seqs,
                     const std::int32_t* __restrict__ row_seq, kv_layer_planes<KvElem> cache, KvElem* stage_k,
                     KvElem* stage_v, float* stage_ks, float* stage_vs, int kv_heads, int head_dim) {
  const int row = int(blockIdx.x), h = int(blockIdx.y);
  if constexpr (ToCache) {
    // A chunk longer than a ring maps two of its positions to one slot; the naive executor appends
    // in order, so the later position must win: skip a row whose slot a later row of the chunk
    // takes (never happens on tables, whose lists do not wrap). Block-uniform, before any barrier.
    const device_seq s = seqs[row_seq[row]];
    const std::int32_t pos = s.start + row - s.first_row;
    if (pos + cache.n_blocks * cache.block_tokens < s.start + s.n_tokens) return;
  }
  const float* src[2] = {k + (std::int64_t(row) * kv_heads + h) * head_dim, v + (std::int64_t(row) * kv_heads + h) * head_dim};
  __shared__ float warp_amax[2][kv_encode_threads / warp_size];
  float scale[2] = {1.0f, 1.0f};
  if constexpr (kv_has_scale<KvElem>) {
#pragma unroll
    for (int which = 0; which < 2; ++which) {
      float amax = 0.0f;
      for (int d = int(threadIdx.x); d < head_dim; d += kv_encode_threads) amax = fmaxf(amax, fabsf(src[which][d]));
      amax = warp_max(amax);
      if (threadIdx.x % warp_size == 0) warp_amax[which][threadIdx.x / warp_size] = amax;
    }
    __syncthreads();
#pragma unroll
    for (int which = 0; which < 2; ++which) {
      float amax = 0.0f;
      for (int w = 0; w < kv_encode_threads / warp_size; ++w) amax = fmaxf(amax, warp_amax[which][w]);
      constexpr float qmax = std::is_same_v<KvElem, fp8_e4m3> ? 448.0f : 127.0f;
      scale[which] = amax > 0.0f ? amax / qmax : 1.0f;  // kv_vector_scale
    }
  }
  KvElem* dst[2];
  float* dst_scale[2] = {nullptr, nullptr};
  if constexpr (ToCache) {
    const device_seq s = seqs[row_seq[row]];
    const kv_cache_view view = cache.view(s);
    const std::int32_t pos = s.start + row - s.first_row;
    dst[0] = cache.k + view.offset(pos, h);
    dst[1] = cache.v + view.offset(pos, h);
    if constexpr (kv_has_scale<KvElem>) {
      dst_scale[0] = cache.k_scale + view.scale_offset(pos, h);
      dst_scale[1] = cache.v_scale + view.scale_offset(pos, h);
    }
  } else {
    dst[0] = stage_k + (std::int64_t(row) * kv_heads + h) * head_dim;
    dst[1] = stage_v + (std::int64_t(row) * kv_heads + h) * head_dim;
    if constexpr (kv_has_scale<KvElem>) {
      dst_scale[0] = stage_ks + std::int64_t(row) * kv_heads + h;
      dst_scale[1] = stage_vs + std::int64_t(row) * kv_heads + h;
    }
  }
#pragma unroll
  for (int which = 0; which < 2; ++which) {
    const float inv = 1.0f / scale[which];
    for (int d = int(threadIdx.x); d < head_dim; d += kv_encode_threads)
      dst[which][d] = kv_encode<KvElem>(src[which][d], inv);
    if constexpr (kv_has_scale<KvElem>)
      if (threadIdx.x == 0) *dst_scale[which] = scale[which];
  }
}

}  // namespace detail

// Append rows [0, T) of this step (k, v: [T][kv_heads][head_dim] f32) to the layer's planes.
// row_seq: [T] device, the sequence of each row; seqs: device step sequences.
template <class KvElem>
status launch_kv_append(const float* k, const float* v, int T, const device_seq* seqs, const std::int32_t* row_seq,
                        const kv_layer_planes<KvElem>& cache, cudaStream_t stream) noexcept {
  if (k == nullptr || v == nullptr || seqs == nullptr || row_seq == nullptr || cache.k == nullptr || T < 0)
    return status::invalid_argument;
  if (T == 0) return status::ok;
  const dim3 grid{unsigned(T), unsigned(cache.kv_heads), 1u};
  detail::kv_encode_kernel<KvElem, true><<<grid, detail::kv_encode_threads, 0, stream>>>(
      k, v, seqs, row_seq, cache, nullptr, nullptr, nullptr, nullptr, cache.kv_heads, cache.head_dim);
  return detail::launch_status();
}

// Encode rows [0, T) into staging buffers (stage_k/v: [T][kv_heads][head_dim]; scales [T][kv_heads]).
template <class KvElem>
status launch_kv_stage(const float* k, const float* v, int T, int kv_heads, int head_dim, KvElem* stage_k,
                       KvElem* stage_v, float* stage_ks, float* stage_vs, cudaStream_t stream) noexcept {
  if (k == nullptr || v == nullptr || stage_k == nullptr || stage_v == nullptr || T < 0 ||
      (kv_has_scale<KvElem> && (stage_ks == nullptr || stage_vs == nullptr)))
    return status::invalid_argument;
  if (T == 0) return status::ok;
  const dim3 grid{unsigned(T), unsigned(kv_heads), 1u};
  detail::kv_encode_kernel<KvElem, false><<<grid, detail::kv_encode_threads, 0, stream>>>(
      k, v, nullptr, nullptr, kv_layer_planes<KvElem>{}, stage_k, stage_v, stage_ks, stage_vs, kv_heads, head_dim);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
