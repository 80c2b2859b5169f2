#pragma once
// The plan a program checks at start-up, for the model it found at run time and the memory it
// found (host: MemAvailable / the cgroup limit; GPU: what CUDA reports): the same make_plan as
// require_fit and gemmaforge-plan, with the file's own weight bytes. It either returns the plan
// (whose layout the engine then carves) or refuses with one message naming what does not fit, by
// how much, and what to lower.
//
//   plan: 11040 tokens of KV fit, 8192 needed
#include <cstdint>
#include <string>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/plan/memory_plan.hpp>
#include <gemmaforge/plan/options.hpp>

namespace gemmaforge {

// The one line every program prints at start-up.
inline std::string capacity_line(const plan_result& p) {
  std::string s = "plan: " + std::to_string(p.kv_capacity_tokens) + " tokens of KV fit, " + std::to_string(p.needed_tokens) +
                  " needed";
  if (p.kv_allocated_tokens != p.needed_tokens) s += ", " + std::to_string(p.kv_allocated_tokens) + " allocated";
  return s;
}

// The refusal: what does not fit, by how much, and what to change (each option planned again).
template <class Model>
std::string refusal_message(const device_info& d, const plan_result& p, std::uint64_t weights_bytes) {
  const serving_config& c = p.config;
  std::string m = std::string(Model::name) + " with max_seq_len " + std::to_string(c.max_seq_len) + " x max_batch " +
                  std::to_string(c.max_batch) + " does not fit " + std::string(d.name) +
                  (d.description.empty() ? std::string() : " (" + std::string(d.description) + ")") + ": budget " +
                  format_bytes(p.budget_bytes) + " (" + std::to_string(c.memory_permille / 10) + "." +
                  std::to_string(c.memory_permille % 10) + "% of " + format_bytes(p.device_memory_bytes) + ")";
  if (!p.weights_fit) {
    m += ", the weights alone take " + format_bytes(p.weights_bytes) + ": use a more quantized model file";
    return m;
  }
  m += " - weights " + format_bytes(p.weights_bytes) + " - workspace " + format_bytes(p.workspace_bytes);
  if (p.reserve_bytes) m += " - reserve " + format_bytes(p.reserve_bytes);
  if (p.ring_bytes + p.prefix_snapshot_bytes)
    m += " - window rings " + format_bytes(p.ring_bytes + p.prefix_snapshot_bytes) + " (incl. " +
         std::to_string(c.prefix_slots) + " prefix snapshots)";
  m += " leaves room for " + std::to_string(p.kv_capacity_tokens) + " tokens of KV; " + std::to_string(p.needed_tokens) +
       " are needed (short by " + std::to_string(p.needed_tokens > p.kv_capacity_tokens ? p.needed_tokens - p.kv_capacity_tokens : 0) +
       " tokens, " + format_bytes(p.headroom_bytes < 0 ? std::uint64_t(-p.headroom_bytes) : 0) + ")";
  std::string lower;
  auto option = [&](const std::string& text) { lower += (lower.empty() ? "" : ", ") + text; };
  if (const std::uint32_t n = max_context<Model>(d, c, weights_bytes); n > 0)
    option("--ctx-size " + std::to_string(n) + " (or --fit)");
  if (const std::uint32_t b = max_batch_that_fits<Model>(d, c); b > 0 && b < c.max_batch) option("--max-batch " + std::to_string(b));
  if (c.kv != dtype::fp8_e4m3) {
    serving_config x = c;
    x.kv = dtype::fp8_e4m3;
    if (make_plan<Model>(d, x, weights_bytes).fits) option("--kv fp8");
  }
  if (c.prefix_slots > 0) {
    serving_config x = c;
    x.prefix_slots = 0;
    if (make_plan<Model>(d, x, weights_bytes).fits) option("--prefix-slots 0");
  }
  m += lower.empty() ? ": no smaller setting fits; free memory or use a smaller model" : ". Lower: " + lower;
  return m;
}

// The start-up check. fit: the largest max_seq_len that fits (at most the model's positions)
// replaces c.max_seq_len. Throws errc::out_of_memory with refusal_message when nothing fits.
template <class Model>
plan_result plan_at_startup(const device_info& d, serving_config c, bool fit, std::uint64_t weights_bytes) {
  if (const config_error e = check_for<Model>(c); e != config_error::none) {
    if (e == config_error::max_seq_len_exceeds_model)
      throw error(errc::invalid_argument, "--ctx-size " + std::to_string(c.max_seq_len) + " exceeds the model's " +
                                              std::to_string(Model::max_positions) + " positions");
    throw error(errc::invalid_argument, std::string(to_string(e)));
  }
  if (fit) {
    const std::uint32_t n = max_context<Model>(d, c, weights_bytes);
    if (n > 0) c.max_seq_len = n;
  }
  const plan_result p = make_plan<Model>(d, c, weights_bytes);
  if (!p.fits) throw error(errc::out_of_memory, refusal_message<Model>(d, p, weights_bytes));
  return p;
}

}  // namespace gemmaforge
