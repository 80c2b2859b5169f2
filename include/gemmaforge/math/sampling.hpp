#pragma once
// Per-element sampling math shared by the CPU and CUDA samplers.
#include <gemmaforge/core/macros.hpp>

namespace gemmaforge {

// Repetition penalty as in CTRL / HF / llama.cpp: push a seen token's logit towards "less likely"
// (divide a positive logit, multiply a negative one). 1 = off.
GF_HOST_DEVICE float apply_repetition_penalty(float logit, float penalty) {
  return logit > 0.0f ? logit / penalty : logit * penalty;
}

// OpenAI's frequency and presence penalties: subtract count * frequency + [count > 0] * presence.
GF_HOST_DEVICE float apply_count_penalties(float logit, int count, float frequency, float presence) {
  return logit - float(count) * frequency - (count > 0 ? presence : 0.0f);
}

// Unnormalised probability of a logit relative to the row maximum, at a temperature (> 0).
GF_HOST_DEVICE float tempered_weight(float logit, float max_logit, float inv_temperature) {
  return expf((logit - max_logit) * inv_temperature);
}

}  // namespace gemmaforge
