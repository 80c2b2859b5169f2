#pragma once
// Sampling on the device over rows of logits (a 256k vocabulary), the same algorithm as the CPU
// sampler (runtime/sampler.hpp): penalties -> temperature -> top-k -> top-p -> min-p -> draw, with
// the counter-based RNG of math/rng.hpp (draw u = uniform01(seed, counter)) and the penalty math of
// math/sampling.hpp, so CPU and GPU draw the same way.
//
//   penalties  each distinct token of the history window is penalised once, with its count:
//              apply_repetition_penalty then apply_count_penalties (bit-identical to the CPU).
//   greedy     temperature 0: argmax, ties to the lowest id (a block reduction).
//   weights    w_i = tempered_weight(l_i, max, 1 / T) (expf, as the CPU; CUDA's expf and glibc's may
//              differ in the last bit, which can move a draw only when u falls within ~1e-7 of a
//              boundary between two tokens).
//   no filter  the first id (ascending) whose running sum exceeds u * total.
//   filters    candidates ordered by (weight desc, id asc); min-p keeps weights >= min_p, top-k the
//              first k, top-p the shortest prefix holding top_p of the kept mass; the draw walks the
//              kept prefix in that order. No sort: every "k-th element" or "element where the
//              running mass crosses X" is found by a radix descent over the weights' bit patterns
//              (non-negative floats order like their bits): three passes of 11/11/10 bits with
//              shared-memory histograms, then the rank among equal weights by id.
//   sums       in 2^-40 fixed point (u64): integer atomics and scans make every sum independent of
//              thread scheduling, so a row gives the same token on every run. The CPU sums in double
//              in its own order; the two differ by ~1e-12 of the total, again mattering only at a
//              boundary.
// One 1024-thread block per row (rows are independent; a row's result never depends on the batch).
// Greedy reads the row once; a filtered draw makes about 15 passes over the row (L2-resident).
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/math/rng.hpp>
#include <gemmaforge/math/sampling.hpp>
#include <gemmaforge/runtime/sampling_params.hpp>

namespace gemmaforge::cuda {

// One row's parameters as the kernel reads them (runtime/sampling_params.hpp + the draw counter and
// where the row's token history is).
struct device_sampling_params {
  float temperature = 0.0f;
  std::int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  std::int32_t penalty_last_n = 64;
  std::uint64_t seed = 0;
  std::uint64_t counter = 0;        // the request's output position: draw number `counter`
  std::int32_t history_offset = 0;  // into the history array
  std::int32_t history_len = 0;     // prompt + output so far
};

inline device_sampling_params to_device(const sampling_params& p, std::uint64_t counter, std::int32_t history_offset,
                                        std::int32_t history_len) {
  device_sampling_params d;
  d.temperature = p.temperature;
  d.top_k = p.top_k;
  d.top_p = p.top_p;
  d.min_p = p.min_p;
  d.repetition_penalty = p.repetition_penalty;
  d.frequency_penalty = p.frequency_penalty;
  d.presence_penalty = p.presence_penalty;
  d.penalty_last_n = p.penalty_last_n;
  d.seed = p.seed;
  d.counter = counter;
  d.history_offset = history_offset;
  d.history_len = history_len;
  return d;
}

namespace detail {

inline constexpr int sample_threads = 1024;
inline constexpr int radix_buckets = 2048;  // widest pass: 11 bits
inline constexpr double mass_unit = 1099511627776.0;  // 2^40

__device__ __forceinline__ std::uint64_t to_fixed(float w) { return std::uint64_t(double(w) * mass_unit); }

// Is (key, id) at or before the cut in (weight desc, id asc) order?
struct order_cut {
  bool all = true;
  std::uint32_t key = 0;
  std::int32_t id = 0;
  __device__ bool admits(std::uint32_t k, std::int32_t i) const { return all || k > key || (k == key && i <= id); }
};

struct sample_smem {
  union {
    typename cub::BlockReduce<float, sample_threads>::TempStorage reduce_f;
    typename cub::BlockReduce<std::uint64_t, sample_threads>::TempStorage reduce_u;
    typename cub::BlockReduce<std::int32_t, sample_threads>::TempStorage reduce_i;
    typename cub::BlockScan<std::uint64_t, sample_threads>::TempStorage scan_u;
  } cub;
  std::uint64_t hist[radix_buckets];
  std::uint32_t count_hist[radix_buckets];
  std::uint64_t u64_a, u64_b;
  std::int32_t i32_a, i32_b;
  float f32_a;
};

// Walks the elements admitted by `pred` in (weight desc, id asc) order and finds the first one at
// which the running count reaches `target` (Mass = false) or the running fixed-point mass reaches
// (>=, Strict = false) or exceeds (>, Strict = true) `target`. Returns its id, or -1 if the walk
// ends first. All threads of the block call it; the result is in every thread.
template <bool Mass, bool Strict, class Pred>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not read as a call
__device__ std::int32_t find_in_order(const float* w, int n, Pred pred, std::uint64_t target, sample_smem& sm) {
  constexpr int shifts[3] = {21, 10, 0};
  constexpr int widths[3] = {11, 11, 10};
  const int tid = int(threadIdx.x);
  std::uint32_t prefix = 0, mask = 0;
  std::uint64_t before = 0;  // count or mass of admitted elements strictly before the current bucket
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = shifts[pass], nb = 1 << widths[pass];
    for (int b = tid; b < nb; b += sample_threads) {
      sm.hist[b] = 0;
      sm.count_hist[b] = 0;
    }
    __syncthreads();
    for (int i = tid; i < n; i += sample_threads) {
      const std::uint32_t key = __float_as_uint(w[i]);
      if ((key & mask) != prefix || !pred(key, i)) continue;
      const int b = int((key >> shift) & std::uint32_t(nb - 1));
      if constexpr (Mass) atomicAdd(reinterpret_cast<unsigned long long*>(&sm.hist[b]), (unsigned long long)to_fixed(w[i]));
      else atomicAdd(&sm.count_hist[b], 1u);
    }
    __syncthreads();
    // Buckets in descending order: thread t owns reversed buckets 2t, 2t + 1.
    std::uint64_t own[2];
    for (int k = 0; k < 2; ++k) {
      const int rb = 2 * tid + k;
      const int b = nb - 1 - rb;
      own[k] = rb < nb ? (Mass ? sm.hist[b] : std::uint64_t(sm.count_hist[b])) : 0;
    }
    std::uint64_t excl;
    cub::BlockScan<std::uint64_t, sample_threads>(sm.cub.scan_u).ExclusiveSum(own[0] + own[1], excl);
    if (tid == 0) sm.i32_a = -1;
    __syncthreads();
    std::uint64_t run = before + excl;
    for (int k = 0; k < 2; ++k) {
      const int rb = 2 * tid + k;
      if (rb >= nb) break;
      const std::uint64_t next = run + own[k];
      const bool cross = Mass ? (Strict ? next > target : next >= target) : next >= target;
      const bool prev_cross = Mass ? (Strict ? run > target : run >= target) : run >= target;
      if (own[k] > 0 && cross && !prev_cross) {
        sm.i32_a = nb - 1 - rb;
        sm.u64_a = run;
      }
      run = next;
    }
    __syncthreads();
    const int chosen = sm.i32_a;
    if (chosen < 0) return -1;  // the admitted set ends before the target (rounding at the end)
    before = sm.u64_a;
    prefix |= std::uint32_t(chosen) << shift;
    mask |= std::uint32_t(nb - 1) << shift;
    __syncthreads();
  }
  // All admitted elements with key == prefix have the same weight: find which of them, by id.
  const std::uint32_t key = prefix;
  const float wv = __uint_as_float(key);
  std::uint64_t need;  // 1-based rank among the ties
  if constexpr (Mass) {
    const std::uint64_t f = to_fixed(wv);
    const std::uint64_t gap = target - before;  // before <= target (< for Strict) by construction
    need = Strict ? gap / f + 1 : (gap + f - 1) / f;
    if (need == 0) need = 1;
  } else {
    need = target - before;
  }
  const int chunk = (n + sample_threads - 1) / sample_threads;
  const int i0 = tid * chunk, i1 = min(n, i0 + chunk);
  std::uint64_t mine = 0;
  for (int i = i0; i < i1; ++i) {
    const std::uint32_t k = __float_as_uint(w[i]);
    mine += k == key && pred(k, i);
  }
  std::uint64_t excl;
  cub::BlockScan<std::uint64_t, sample_threads>(sm.cub.scan_u).ExclusiveSum(mine, excl);
  if (tid == 0) sm.i32_b = -1;
  __syncthreads();
  if (excl < need && excl + mine >= need) {
    std::uint64_t seen = excl;
    for (int i = i0; i < i1; ++i) {
      const std::uint32_t k = __float_as_uint(w[i]);
      if (k == key && pred(k, i) && ++seen == need) {
        sm.i32_b = i;
        break;
      }
    }
  }
  __syncthreads();
  const std::int32_t r = sm.i32_b;
  __syncthreads();
  return r;
}

// A template (with nothing to vary) so that the header-only kernel has vague linkage: every
// translation unit may instantiate it without multiple-definition errors at link time.
template <int = 0>
__global__ void __launch_bounds__(sample_threads)
    sample_kernel(float* __restrict__ logits, int vocab, const device_sampling_params* __restrict__ params,
                  const std::int32_t* __restrict__ history, float* __restrict__ weights, std::int32_t* __restrict__ out) {
  __shared__ sample_smem sm;
  const int row = int(blockIdx.x), tid = int(threadIdx.x);
  const device_sampling_params p = params[row];
  float* x = logits + std::int64_t(row) * vocab;
  float* w = weights + std::int64_t(row) * vocab;

  // ---- penalties: every distinct id of the window once, at its first occurrence.
  if (p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    const int last_n = min(p.history_len, p.penalty_last_n);
    const std::int32_t* h = history + p.history_offset + (p.history_len - last_n);
    for (int i = tid; i < last_n; i += sample_threads) {
      const std::int32_t tok = h[i];
      bool first = true;
      for (int j = 0; j < i && first; ++j) first = h[j] != tok;
      if (!first || tok < 0 || tok >= vocab) continue;
      int count = 1;
      for (int j = i + 1; j < last_n; ++j) count += h[j] == tok;
      float l = x[tok];
      if (p.repetition_penalty != 1.0f) l = apply_repetition_penalty(l, p.repetition_penalty);
      x[tok] = apply_count_penalties(l, count, p.frequency_penalty, p.presence_penalty);
    }
    __syncthreads();
  }

  // ---- argmax (greedy, and the maximum the weights are relative to). NaN counts as -inf.
  float best = -INFINITY;
  std::int32_t best_id = vocab;
  for (int i = tid; i < vocab; i += sample_threads) {
    const float v = x[i];
    if (v > best) best = v, best_id = i;  // ascending i per thread: keeps the lowest id of a tie
  }
  const float mx = cub::BlockReduce<float, sample_threads>(sm.cub.reduce_f).Reduce(best, [](float a, float b) { return fmaxf(a, b); });
  if (tid == 0) sm.f32_a = mx;
  __syncthreads();
  const float max_logit = sm.f32_a;
  const std::int32_t cand = best == max_logit ? best_id : vocab;
  __syncthreads();
  const std::int32_t argmax_id = cub::BlockReduce<std::int32_t, sample_threads>(sm.cub.reduce_i).Reduce(cand, [](std::int32_t a, std::int32_t b) { return min(a, b); });
  if (tid == 0) sm.i32_a = argmax_id < vocab ? argmax_id : 0;
  __syncthreads();
  const std::int32_t greedy = sm.i32_a;
  __syncthreads();
  if (p.temperature == 0.0f) {
    if (tid == 0) out[row] = greedy;
    return;
  }

  // ---- weights relative to the maximum, and their fixed-point total.
  const float inv_t = 1.0f / p.temperature;
  std::uint64_t local = 0;
  for (int i = tid; i < vocab; i += sample_threads) {
    const float wi = tempered_weight(x[i], max_logit, inv_t);
    w[i] = wi;
    local += to_fixed(wi);
  }
  __syncthreads();  // weights written before anyone reads them back
  const double u = double(uniform01(p.seed, p.counter));
  const bool filtered = (p.top_k > 0 && p.top_k < vocab) || p.top_p < 1.0f || p.min_p > 0.0f;

  if (!filtered) {
    const std::uint64_t total = cub::BlockReduce<std::uint64_t, sample_threads>(sm.cub.reduce_u).Sum(local);
    if (tid == 0) sm.u64_b = total;
    __syncthreads();
    const std::uint64_t target = std::uint64_t(u * double(sm.u64_b));
    // First id whose running sum (ascending ids) exceeds target: contiguous chunks per thread.
    const int chunk = (vocab + sample_threads - 1) / sample_threads;
    const int i0 = tid * chunk, i1 = min(vocab, i0 + chunk);
    std::uint64_t mine = 0;
    for (int i = i0; i < i1; ++i) mine += to_fixed(w[i]);
    std::uint64_t excl;
    cub::BlockScan<std::uint64_t, sample_threads>(sm.cub.scan_u).ExclusiveSum(mine, excl);
    if (tid == 0) sm.i32_b = greedy;  // the CPU's fallback when rounding leaves nothing past target
    __syncthreads();
    if (excl <= target && excl + mine > target) {
      std::uint64_t acc = excl;
      for (int i = i0; i < i1; ++i) {
        acc += to_fixed(w[i]);
        if (acc > target) {
          sm.i32_b = i;
          break;
        }
      }
    }
    __syncthreads();
    if (tid == 0) out[row] = sm.i32_b;
    return;
  }

  // ---- filtered: candidates weight >= min_p (the top weight is exactly 1), then top-k, top-p.
  const std::uint32_t min_key = __float_as_uint(p.min_p);
  order_cut cut;
  auto admitted = [&](std::uint32_t k, std::int32_t i) { return k >= min_key && cut.admits(k, i); };
  std::int32_t n_cand_local = 0;
  for (int i = tid; i < vocab; i += sample_threads) n_cand_local += __float_as_uint(w[i]) >= min_key;
  const std::int32_t n_cand = cub::BlockReduce<std::int32_t, sample_threads>(sm.cub.reduce_i).Sum(n_cand_local);
  if (tid == 0) sm.i32_a = n_cand;
  __syncthreads();
  std::int32_t n_kept = sm.i32_a;
  __syncthreads();
  if (p.top_k > 0 && p.top_k < n_kept) {
    const std::int32_t id = find_in_order<false, false>(w, vocab, admitted, std::uint64_t(p.top_k), sm);
    if (id >= 0) {
      cut = order_cut{false, __float_as_uint(w[id]), id};
      n_kept = p.top_k;
    }
  }
  auto kept_mass = [&]() {
    std::uint64_t m = 0;
    for (int i = tid; i < vocab; i += sample_threads) {
      const std::uint32_t k = __float_as_uint(w[i]);
      if (admitted(k, i)) m += to_fixed(w[i]);
    }
    const std::uint64_t total = cub::BlockReduce<std::uint64_t, sample_threads>(sm.cub.reduce_u).Sum(m);
    if (tid == 0) sm.u64_b = total;
    __syncthreads();
    const std::uint64_t r = sm.u64_b;
    __syncthreads();
    return r;
  };
  std::uint64_t kept = kept_mass();
  if (p.top_p < 1.0f) {
    const std::uint64_t need = std::uint64_t(double(p.top_p) * double(kept));
    const std::int32_t id = find_in_order<true, false>(w, vocab, admitted, need, sm);
    if (id >= 0) {
      cut = order_cut{false, __float_as_uint(w[id]), id};
      kept = kept_mass();
      // n_kept is only needed for the fallback below, which recounts.
    }
  }
  const std::uint64_t target = std::uint64_t(u * double(kept));
  std::int32_t id = find_in_order<true, true>(w, vocab, admitted, target, sm);
  if (id < 0) {
    // Rounding left nothing past the target: the CPU returns the last kept candidate in order.
    std::int32_t c = 0;
    for (int i = tid; i < vocab; i += sample_threads) c += admitted(__float_as_uint(w[i]), i);
    const std::int32_t n = cub::BlockReduce<std::int32_t, sample_threads>(sm.cub.reduce_i).Sum(c);
    if (tid == 0) sm.i32_a = n;
    __syncthreads();
    const std::int32_t total_kept = sm.i32_a;
    __syncthreads();
    id = find_in_order<false, false>(w, vocab, admitted, std::uint64_t(total_kept), sm);
    (void)n_kept;
  }
  if (tid == 0) out[row] = id >= 0 ? id : greedy;
}

}  // namespace detail

// Samples one token per row. logits: [rows][vocab] (modified in place by the penalties, as on the
// CPU); params: [rows] device; history: device ids the rows' history offsets point into; weights:
// [rows][vocab] f32 scratch; out: [rows] device token ids.
inline status launch_sample(float* logits, int rows, int vocab, const device_sampling_params* params,
                            const std::int32_t* history, float* weights, std::int32_t* out, cudaStream_t stream) noexcept {
  if (logits == nullptr || params == nullptr || weights == nullptr || out == nullptr || rows < 0 || vocab <= 0)
    return status::invalid_argument;
  if (rows == 0) return status::ok;
  detail::sample_kernel<><<<unsigned(rows), detail::sample_threads, 0, stream>>>(logits, vocab, params, history, weights, out);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
