#pragma once
// Log-probabilities of a sampled token and of its most likely alternatives (OpenAI's logprobs /
// top_logprobs), from the row of logits the sampler drew from: after the final softcap, the
// penalties and logit_bias, before temperature, top-k, top-p and min-p (OpenAI reports the model's
// distribution, not the truncated one). Values are log_softmax(logits)[id] = logit - logsumexp,
// summed in double so a 262,144-entry row loses nothing to rounding.
//
// No allocation: the caller passes room for k ids and k values (the engine uses the start of the
// sampler's planned workspace, free again once the draw is made).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace gemmaforge {

// OpenAI's bounds: chat's top_logprobs is at most 20 (legacy completions' logprobs at most 5).
inline constexpr std::int32_t max_top_logprobs = 20;

struct token_logprobs {
  float logprob = 0.0f;                    // of the chosen token
  std::int32_t n_top = 0;                  // alternatives below, most likely first (ties: lower id)
  const std::int32_t* top_ids = nullptr;
  const float* top_logprobs = nullptr;
};

// log(sum(exp(x))) over a row, stable (the maximum is subtracted first). -inf entries (banned
// tokens) contribute nothing.
inline double log_sum_exp(const float* x, std::int32_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (std::int32_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (!std::isfinite(m)) return double(m);
  double s = 0.0;
  for (std::int32_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - double(m));
  return double(m) + std::log(std::max(s, 1.0));  // the maximum itself adds exp(0) = 1
}

// The chosen token's log-probability and the k most likely tokens with theirs. `top_ids` and
// `top_lp` hold at least k entries; k is clamped to [0, max_top_logprobs].
inline token_logprobs compute_logprobs(const float* logits, std::int32_t vocab, std::int32_t chosen, std::int32_t k,
                                       std::int32_t* top_ids, float* top_lp) {
  k = std::clamp(k, std::int32_t(0), std::min(std::int32_t(max_top_logprobs), vocab));
  const double lse = log_sum_exp(logits, vocab);
  token_logprobs out;
  out.logprob = float(double(logits[chosen]) - lse);
  // Insertion into a k-long list sorted by logit (descending). Ids are visited in increasing
  // order and only a strictly larger logit displaces, so ties keep the lower id.
  std::int32_t n = 0;
  for (std::int32_t i = 0; i < vocab && k > 0; ++i) {
    const float l = logits[i];
    if (n == k && !(l > top_lp[n - 1])) continue;
    std::int32_t j = n < k ? n++ : n - 1;
    while (j > 0 && l > top_lp[j - 1]) {
      top_lp[j] = top_lp[j - 1];
      top_ids[j] = top_ids[j - 1];
      --j;
    }
    top_lp[j] = l;
    top_ids[j] = i;
  }
  for (std::int32_t j = 0; j < n; ++j) top_lp[j] = float(double(top_lp[j]) - lse);
  out.n_top = n;
  out.top_ids = top_ids;
  out.top_logprobs = top_lp;
  return out;
}

}  // namespace gemmaforge
