#pragma once
// serving_config: the serving limits of a deployment. A structural literal type, so it is a
// template argument (memory_plan<Model, Device, cfg>, engine<Model, Backend, cfg>) as well as a
// runtime value the plan CLI fills from flags. Every member is an integer or an enum for that
// reason: the memory fraction is in permille (900 = 0.90), not a double.
#include <cstdint>
#include <string_view>

#include <gemmaforge/core/dtype.hpp>

namespace gemmaforge {

// How the weights are stored. A scheme can mix storage formats per tensor (q4_k_m does): see
// plan/weight_bytes.hpp for the exact rule each scheme follows.
enum class weight_scheme : std::uint8_t { f32, bf16, f16, q8_0, q4_k_m };

inline constexpr weight_scheme all_weight_schemes[] = {weight_scheme::f32, weight_scheme::bf16, weight_scheme::f16,
                                                       weight_scheme::q8_0, weight_scheme::q4_k_m};

constexpr std::string_view to_string(weight_scheme s) {
  switch (s) {
    case weight_scheme::f32: return "f32";
    case weight_scheme::bf16: return "bf16";
    case weight_scheme::f16: return "f16";
    case weight_scheme::q8_0: return "q8_0";
    case weight_scheme::q4_k_m: return "q4_k_m";
  }
  return "?";
}

// Schemes whose matmul weights are block-quantized (the integer-activation matmul paths apply).
constexpr bool is_block_quantized(weight_scheme s) { return s == weight_scheme::q8_0 || s == weight_scheme::q4_k_m; }

constexpr bool parse_weight_scheme(std::string_view s, weight_scheme& out) {
  for (weight_scheme w : all_weight_schemes)
    if (s == to_string(w)) { out = w; return true; }
  return false;
}

struct serving_config {
  std::uint32_t max_seq_len = 8192;             // longest sequence (prompt + generated), tokens
  std::uint32_t max_batch = 1;                  // sequences decoded together
  weight_scheme weights = weight_scheme::bf16;  // weight storage
  dtype kv = dtype::bf16;                       // KV cache element type (fp8/int8 carry f32 scales)
  std::uint32_t memory_permille = 900;          // fraction of device memory we may use, x1000
  std::uint32_t prefill_chunk = 512;            // prompt tokens processed per step
  std::uint32_t block_tokens = 16;              // tokens per KV block
  // The KV pool's global-layer blocks: 0 = what max_batch full-length sequences need, unless
  // kv_fill; otherwise exactly this many (tests and small pools).
  std::uint32_t kv_blocks = 0;
  std::uint32_t prefix_slots = 0;  // prefix-cache entries; each owns a snapshot of a sequence's rings
  std::uint32_t logits_rows = 0;   // logits rows per step; 0 = max_batch (perplexity scores a chunk)
  // true: the pool takes every block the budget leaves (a GPU deployment, as vLLM does); false:
  // exactly what max_batch sequences of max_seq_len need (the CPU: host memory is shared).
  bool kv_fill = false;
};

// Derived limits every user of a config agrees on (the layout, the engine, the executors).
// A step runs the decode rows of the running sequences plus at most one prefill chunk (a chunk
// longer than max_seq_len is never needed).
constexpr std::uint64_t step_tokens(const serving_config& c) {
  return std::uint64_t(c.prefill_chunk < c.max_seq_len ? c.prefill_chunk : c.max_seq_len) + c.max_batch;
}
constexpr std::uint64_t logits_rows(const serving_config& c) { return c.logits_rows > 0 ? c.logits_rows : c.max_batch; }
constexpr std::uint64_t blocks_per_sequence(const serving_config& c) {
  return (std::uint64_t(c.max_seq_len) + c.block_tokens - 1) / c.block_tokens;
}
// Global blocks for max_batch full-length sequences.
constexpr std::uint64_t needed_blocks(const serving_config& c) { return blocks_per_sequence(c) * c.max_batch; }

// Limits that keep every product the planner forms (tokens x bytes per token, batch x vocab ...)
// far inside 64 bits, and block sizes the kernels tile by.
inline constexpr std::uint32_t max_supported_seq_len = 1u << 24;
inline constexpr std::uint32_t max_supported_batch = 1u << 16;
inline constexpr std::uint32_t max_block_tokens = 1024;

enum class config_error : std::uint8_t {
  none,
  zero_max_seq_len,
  max_seq_len_too_large,
  zero_max_batch,
  max_batch_too_large,
  zero_memory_fraction,
  memory_fraction_above_one,
  zero_prefill_chunk,
  block_tokens_not_power_of_two,
  block_tokens_too_large,
  prefix_slots_too_large,
  logits_rows_too_large,
  kv_blocks_too_large,
  max_seq_len_exceeds_model,  // only from check_for<Model>
};

constexpr std::string_view to_string(config_error e) {
  switch (e) {
    case config_error::none: return "";
    case config_error::zero_max_seq_len: return "max_seq_len must be at least 1";
    case config_error::max_seq_len_too_large: return "max_seq_len must be at most 16777216";
    case config_error::zero_max_batch: return "max_batch must be at least 1";
    case config_error::max_batch_too_large: return "max_batch must be at most 65536";
    case config_error::zero_memory_fraction: return "memory fraction must be greater than 0";
    case config_error::memory_fraction_above_one: return "memory fraction must be at most 1";
    case config_error::zero_prefill_chunk: return "prefill_chunk must be at least 1";
    case config_error::block_tokens_not_power_of_two: return "block_tokens must be a power of two";
    case config_error::block_tokens_too_large: return "block_tokens must be at most 1024";
    case config_error::prefix_slots_too_large: return "prefix_slots must be at most 65536";
    case config_error::logits_rows_too_large: return "logits_rows must be at most 16777216";
    case config_error::kv_blocks_too_large: return "the KV pool cannot index more than 2147483647 blocks";
    case config_error::max_seq_len_exceeds_model: return "max_seq_len exceeds the model's context length";
  }
  return "unknown config error";
}

// The first problem with a config, independent of the model.
constexpr config_error check(const serving_config& c) {
  if (c.max_seq_len == 0) return config_error::zero_max_seq_len;
  if (c.max_seq_len > max_supported_seq_len) return config_error::max_seq_len_too_large;
  if (c.max_batch == 0) return config_error::zero_max_batch;
  if (c.max_batch > max_supported_batch) return config_error::max_batch_too_large;
  if (c.memory_permille == 0) return config_error::zero_memory_fraction;
  if (c.memory_permille > 1000) return config_error::memory_fraction_above_one;
  if (c.prefill_chunk == 0) return config_error::zero_prefill_chunk;
  if (c.block_tokens == 0 || (c.block_tokens & (c.block_tokens - 1)) != 0)
    return config_error::block_tokens_not_power_of_two;
  if (c.block_tokens > max_block_tokens) return config_error::block_tokens_too_large;
  if (c.prefix_slots > max_supported_batch) return config_error::prefix_slots_too_large;
  if (c.logits_rows > max_supported_seq_len) return config_error::logits_rows_too_large;
  // Block ids are int32 in the pool and the kernels' block tables.
  if (c.kv_blocks > 0x7fffffffu || needed_blocks(c) > 0x7fffffffu) return config_error::kv_blocks_too_large;
  return config_error::none;
}

// The same check against a model: a sequence cannot be longer than the model's positions.
template <class Model>
constexpr config_error check_for(const serving_config& c) {
  const config_error e = check(c);
  if (e != config_error::none) return e;
  if (c.max_seq_len > std::uint32_t(Model::max_positions)) return config_error::max_seq_len_exceeds_model;
  return config_error::none;
}

// Human-readable form: empty when the config is valid.
constexpr std::string_view validate(const serving_config& c) { return to_string(check(c)); }
template <class Model>
constexpr std::string_view validate_for(const serving_config& c) { return to_string(check_for<Model>(c)); }

}  // namespace gemmaforge
