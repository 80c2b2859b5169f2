#pragma once
// What to change when a plan does not fit: each option is the config with one or two knobs
// turned, planned again with the same make_plan, so the report shows what it buys in tokens.
// Ranked by the KV capacity they reach (options that fit first). Runtime-only (std::vector).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gemmaforge/plan/memory_plan.hpp>

namespace gemmaforge {

struct plan_option {
  std::string change;     // "memory fraction 0.95", "fp8 KV", "max_seq_len 5120" ...
  serving_config config;  // the config with the change applied
  plan_result plan;
};

// The largest max_batch <= cfg.max_batch that fits at cfg.max_seq_len; 0 if none.
template <class Model>
constexpr std::uint32_t max_batch_that_fits(const device_info& d, serving_config c) {
  std::uint32_t lo = 0, hi = c.max_batch;
  while (lo < hi) {
    const std::uint32_t mid = lo + (hi - lo + 1) / 2;
    c.max_batch = mid;
    if (make_plan<Model>(d, c).fits) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The smallest memory fraction (permille) that fits, or 0 when even 1.0 does not.
template <class Model>
constexpr std::uint32_t min_permille_that_fits(const device_info& d, serving_config c) {
  for (std::uint32_t p = 1; p <= 1000; ++p) {
    c.memory_permille = p;
    if (make_plan<Model>(d, c).fits) return p;
  }
  return 0;
}

template <class Model>
std::vector<plan_option> suggest_options(const device_info& d, const serving_config& c) {
  std::vector<plan_option> out;
  auto add = [&](std::string change, const serving_config& changed) {
    out.push_back(plan_option{std::move(change), changed, make_plan<Model>(d, changed)});
  };
  auto permille_text = [](std::uint32_t p) {
    std::string s = std::to_string(p / 1000) + "." + std::to_string(p % 1000 / 100) + std::to_string(p % 100 / 10);
    if (p % 10) s += std::to_string(p % 10);
    return s;
  };

  if (c.memory_permille < 950) {
    serving_config x = c;
    x.memory_permille = 950;
    add("memory fraction 0.95 (the seed's vLLM fix)", x);
  }
  if (const std::uint32_t p = min_permille_that_fits<Model>(d, c); p != 0 && p > c.memory_permille && p != 950) {
    serving_config x = c;
    x.memory_permille = p;
    add("memory fraction " + permille_text(p) + " (smallest that fits)", x);
  }
  if (size_of(c.kv) > 1) {
    serving_config x = c;
    x.kv = dtype::fp8_e4m3;
    add("fp8 KV cache", x);
  }
  const bool weights_wider_than_q8 = c.weights == weight_scheme::f32 || c.weights == weight_scheme::bf16 ||
                                     c.weights == weight_scheme::f16;
  if (weights_wider_than_q8) {
    serving_config x = c;
    x.weights = weight_scheme::q8_0;
    add("q8_0 weights", x);
    if (size_of(c.kv) > 1) {
      x.kv = dtype::fp8_e4m3;
      add("q8_0 weights + fp8 KV cache", x);
    }
  }
  if (c.weights != weight_scheme::q4_k_m) {
    serving_config x = c;
    x.weights = weight_scheme::q4_k_m;
    add("q4_k_m weights", x);
  }
  if (const std::uint32_t n = max_context<Model>(d, c); n > 0 && n < c.max_seq_len) {
    serving_config x = c;
    x.max_seq_len = n;
    add("max_seq_len " + std::to_string(n) + " (longest that fits)", x);
  }
  if (c.max_batch > 1) {
    if (const std::uint32_t b = max_batch_that_fits<Model>(d, c); b > 0 && b < c.max_batch) {
      serving_config x = c;
      x.max_batch = b;
      add("max_batch " + std::to_string(b) + " (largest that fits)", x);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const plan_option& a, const plan_option& b) {
    if (a.plan.fits != b.plan.fits) return a.plan.fits;
    return a.plan.kv_capacity_tokens > b.plan.kv_capacity_tokens;
  });
  return out;
}

}  // namespace gemmaforge
