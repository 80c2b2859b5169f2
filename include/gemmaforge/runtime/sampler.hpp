#pragma once
// CPU sampler over one row of logits. Order (as HF and vLLM): penalties -> logit_bias ->
// temperature -> top-k -> top-p -> min-p -> draw. The row keeps the penalised, biased logits
// (what runtime/logprobs.hpp reports from). Greedy (temperature 0) is an argmax with ties to the lowest id.
// No allocation: the caller passes scratch of vocab floats + vocab ints (planned workspace).
// Top-k/top-p avoid a full sort of a 256k vocabulary: candidates are partially selected
// (nth_element) and sorted only as far as needed; the result equals a full sort's exactly.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <gemmaforge/math/rng.hpp>
#include <gemmaforge/math/sampling.hpp>
#include <gemmaforge/runtime/sampling_params.hpp>

namespace gemmaforge {

struct sampler_scratch {
  float* probs = nullptr;          // [vocab]
  std::int32_t* ids = nullptr;     // [vocab]
};

namespace detail {

// Apply repetition / frequency / presence penalties for tokens in history[n - last_n, n).
// `ids` scratch holds a sorted copy of that window so each distinct token is penalised once.
inline void apply_penalties(float* logits, std::int32_t vocab, const std::int32_t* history, std::int32_t n,
                            const sampling_params& p, std::int32_t* ids) {
  if (p.repetition_penalty == 1.0f && p.frequency_penalty == 0.0f && p.presence_penalty == 0.0f) return;
  const std::int32_t last_n = std::min(n, p.penalty_last_n);
  if (last_n == 0) return;
  std::copy(history + (n - last_n), history + n, ids);
  std::sort(ids, ids + last_n);
  for (std::int32_t i = 0; i < last_n;) {
    std::int32_t j = i;
    while (j < last_n && ids[j] == ids[i]) ++j;
    const std::int32_t tok = ids[i];
    if (tok >= 0 && tok < vocab) {
      float l = logits[tok];
      if (p.repetition_penalty != 1.0f) l = apply_repetition_penalty(l, p.repetition_penalty);
      l = apply_count_penalties(l, j - i, p.frequency_penalty, p.presence_penalty);
      logits[tok] = l;
    }
    i = j;
  }
}

// logit_bias: added before the draw; -100 (OpenAI's "ban") makes the logit -inf, so the token
// cannot be drawn whatever the temperature. Later entries for the same id add up.
inline void apply_logit_bias(float* logits, std::int32_t vocab, const sampling_params& p) {
  for (const logit_bias_entry& b : p.logit_bias) {
    if (b.token < 0 || b.token >= vocab) continue;  // validated at submission
    logits[b.token] = b.bias <= logit_bias_ban ? -std::numeric_limits<float>::infinity() : logits[b.token] + b.bias;
  }
}

}  // namespace detail

inline std::int32_t argmax(const float* x, std::int32_t n) {
  std::int32_t best = 0;
  for (std::int32_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// Sample one token. `logits` is modified (penalties). `counter` numbers the draws of a request
// (its output position), making the draw a pure function of (seed, counter).
inline std::int32_t sample_token(float* logits, std::int32_t vocab, const std::int32_t* history, std::int32_t n_history,
                                 const sampling_params& p, std::uint64_t counter, sampler_scratch scratch) {
  detail::apply_penalties(logits, vocab, history, n_history, p, scratch.ids);
  detail::apply_logit_bias(logits, vocab, p);
  if (p.temperature == 0.0f) return argmax(logits, vocab);

  const float max_logit = logits[argmax(logits, vocab)];
  const float inv_t = 1.0f / p.temperature;
  float* prob = scratch.probs;
  double total = 0.0;
  for (std::int32_t i = 0; i < vocab; ++i) {
    prob[i] = tempered_weight(logits[i], max_logit, inv_t);
    total += prob[i];
  }
  const float u = uniform01(p.seed, counter);
  const bool filtered = (p.top_k > 0 && p.top_k < vocab) || p.top_p < 1.0f || p.min_p > 0.0f;
  if (!filtered) {  // plain temperature sampling: walk ids in order
    const double target = double(u) * total;
    double acc = 0.0;
    for (std::int32_t i = 0; i < vocab; ++i) {
      acc += prob[i];
      if (acc > target) return i;
    }
    return argmax(logits, vocab);
  }

  // Candidates ordered by probability (descending), ties by id: a strict total order, so the
  // partial selection below gives exactly what a full sort would.
  std::int32_t* ids = scratch.ids;
  std::int32_t n = 0;
  // min-p is a threshold relative to the most likely token (whose weight is exactly 1 here).
  const float min_w = p.min_p;
  for (std::int32_t i = 0; i < vocab; ++i)
    if (prob[i] >= min_w && prob[i] > 0.0f) ids[n++] = i;  // weight 0: banned (logit_bias) or underflowed
  auto before = [prob](std::int32_t a, std::int32_t b) { return prob[a] > prob[b] || (prob[a] == prob[b] && a < b); };
  if (p.top_k > 0 && p.top_k < n) {
    std::nth_element(ids, ids + p.top_k, ids + n, before);
    n = p.top_k;
  }
  double kept_total = 0.0;
  for (std::int32_t i = 0; i < n; ++i) kept_total += prob[ids[i]];
  if (p.top_p < 1.0f) {
    // Sort a growing head of the candidates until it holds top_p of the mass.
    const double need = double(p.top_p) * kept_total;
    std::int32_t sorted = 0;
    double acc = 0.0;
    std::int32_t cut = n;
    for (std::int32_t chunk = 256; sorted < n; chunk *= 4) {
      const std::int32_t m = std::min(n, sorted + chunk);
      if (m < n) std::nth_element(ids + sorted, ids + m, ids + n, before);
      std::sort(ids + sorted, ids + m, before);
      for (std::int32_t i = sorted; i < m; ++i) {
        acc += prob[ids[i]];
        if (acc >= need) { cut = i + 1; break; }
      }
      sorted = m;
      if (cut < n) break;
    }
    n = cut;
    kept_total = 0.0;
    for (std::int32_t i = 0; i < n; ++i) kept_total += prob[ids[i]];
  } else {
    std::sort(ids, ids + n, before);
  }
  const double target = double(u) * kept_total;
  double acc = 0.0;
  for (std::int32_t i = 0; i < n; ++i) {
    acc += prob[ids[i]];
    if (acc > target) return ids[i];
  }
  return ids[n - 1];
}

}  // namespace gemmaforge
