#pragma once
// The memory plan: can a model serve a config on a device, and how many tokens of KV fit?
//
// One set of constexpr functions computes it. The plan CLI calls make_plan<Model>(device, cfg)
// at run time; memory_plan<Model, Device, cfg> holds the same result as static constexpr members
// at compile time (it calls make_plan too: the formulas exist once).
//
// The terms (bytes), all read off the one arena layout (plan/arena_layout.hpp):
//   budget     = device memory (as CUDA reports it, or what the host has available) x fraction
//   weights    = weight_bytes<Model>(cfg.weights) as stored; on CUDA the layout's "weights"
//                region (aligned device copies) is what the budget pays
//   workspace  = every arena region that is neither weights nor KV: activations, logits, the step
//                description, the sampler and the backend's scratch
//   reserve    = CUDA context + cuBLAS, 0 on the host                  (plan/devices.hpp)
//   rings      = the "kv_local" region: ring_blocks x (max_batch + prefix_slots) blocks per local
//                layer, each sequence's rings plus each prefix-cache entry's snapshot of them
//   pool       = budget - weights - workspace - reserve - rings: room for the global-layer KV
//   capacity   = floor(pool / (block_tokens x kv_bytes_per_token)) whole blocks, in tokens, where
//                kv_bytes_per_token = K + V (+ f32 scales for fp8/int8) x global layers
//   needed     = max_batch x max_seq_len, each sequence rounded up to whole blocks
//   allocated  = capacity when cfg.kv_fill (a GPU deployment), else cfg.kv_blocks or what
//                `needed` takes: the "kv_global" region of the layout the engine carves
//   fits       = weights fit the budget, capacity >= needed and allocated <= capacity
//   headroom   = pool - needed x kv_bytes_per_token (negative when it does not fit)
// A model without global layers (Mistral 7B v0.1: every layer windowed) has no growing KV at all:
// each sequence costs its rings only, so its capacity is counted in whole sequences, as
// max_sequences x max_seq_len (rounded to blocks), and fits means max_batch sequences' rings fit.
#include <cstdint>
#include <string_view>

#include <gemmaforge/core/units.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
#include <gemmaforge/plan/devices.hpp>
#include <gemmaforge/plan/kv_bytes.hpp>
#include <gemmaforge/plan/serving_config.hpp>
#include <gemmaforge/plan/weight_bytes.hpp>

namespace gemmaforge {

struct plan_result {
  serving_config config{};
  config_error error_code = config_error::none;
  std::string_view error;  // empty when the config is valid; every other field is 0 when not

  std::uint64_t device_memory_bytes = 0;
  std::uint64_t budget_bytes = 0;
  std::uint64_t weights_bytes = 0;
  std::uint64_t workspace_bytes = 0;
  std::uint64_t reserve_bytes = 0;

  int global_layers = 0;
  int local_layers = 0;
  std::uint64_t kv_bytes_per_token = 0;        // global layers, K+V+scales
  std::uint64_t kv_block_bytes = 0;            // block_tokens x kv_bytes_per_token
  std::uint64_t local_kv_bytes_per_token = 0;  // local layers, K+V+scales
  std::uint64_t ring_blocks = 0;               // per local layer and sequence
  std::uint64_t ring_bytes_per_sequence = 0;
  std::uint64_t ring_bytes = 0;                // x max_batch
  std::uint64_t prefix_snapshot_bytes = 0;     // x prefix_slots (the rest of the kv_local region)

  std::int64_t pool_bytes_available = 0;  // budget - weights - workspace - reserve - rings
  std::uint64_t kv_capacity_blocks = 0;   // global-layer blocks the pool holds
  std::uint64_t kv_capacity_tokens = 0;
  std::uint64_t kv_allocated_blocks = 0;  // the kv_global region, in blocks
  std::uint64_t kv_allocated_tokens = 0;
  std::uint64_t kv_pool_bytes = 0;        // kv_allocated_blocks x kv_block_bytes: what gets allocated
  std::uint64_t needed_tokens = 0;        // max_batch x round_up(max_seq_len, block_tokens)
  std::uint64_t max_sequences = 0;        // full-length sequences (rings + blocks) the budget holds
  std::uint64_t arena_bytes = 0;          // the layout's arena: the one allocation (device memory on CUDA)
  std::uint64_t host_staging_bytes = 0;   // the layout's host space (CUDA's pinned staging; 0 on the CPU)
  arena_layout layout{};                  // every region, as the engine carves it

  bool weights_fit = false;
  bool fits = false;
  std::int64_t headroom_bytes = 0;

  constexpr bool valid() const { return error_code == config_error::none; }
};

// weights_bytes: the weights as a program found them at run time (the file's tensors: what the
// CPU maps, what a GPU uploads); 0 = the scheme's figure for the descriptor (cfg.weights).
template <class Model>
constexpr plan_result make_plan(const device_info& d, const serving_config& c, std::uint64_t weights_bytes = 0) {
  plan_result r;
  r.config = c;
  r.error_code = check_for<Model>(c);
  r.error = to_string(r.error_code);
  if (r.error_code != config_error::none) return r;

  r.device_memory_bytes = d.memory_bytes;
  r.budget_bytes = d.memory_bytes * c.memory_permille / 1000;  // exact below 18 PB
  r.weights_bytes = weights_bytes > 0 ? weights_bytes : weight_bytes<Model>(c.weights);
  r.reserve_bytes = d.reserve_bytes();

  r.global_layers = Model::layers::global_layers();
  r.local_layers = Model::layers::local_layers();
  r.kv_bytes_per_token = kv_bytes_per_token<Model>(c.kv);
  r.kv_block_bytes = r.kv_bytes_per_token * c.block_tokens;
  r.local_kv_bytes_per_token = local_kv_bytes_per_token<Model>(c.kv);
  r.ring_blocks = ring_blocks<Model>(c);
  r.ring_bytes_per_sequence = ring_bytes_per_sequence<Model>(c);
  r.ring_bytes = r.ring_bytes_per_sequence * c.max_batch;
  r.prefix_snapshot_bytes = r.ring_bytes_per_sequence * c.prefix_slots;

  // The layout with the blocks the config asks for; its fixed part does not depend on them.
  const bool gpu = d.kind == device_kind::cuda;
  layout_inputs in;
  in.backend = gpu ? backend_kind::cuda : backend_kind::cpu;
  in.config = c;
  in.device_weight_bytes = !gpu ? 0 : weights_bytes > 0 ? weights_bytes : device_weight_bytes<Model>(c.weights);
  in.global_blocks = allocated_blocks(c);
  // The CUDA executor's default for quantized weights: 15-bit activations (two int8 digits).
  in.cuda.act_digits = is_block_quantized(c.weights) ? 2 : 0;
  const arena_layout fixed = make_arena_layout<Model>(in);
  const std::uint64_t in_arena_weights = round_up(fixed.bytes("weights"), arena_alignment);
  const std::uint64_t kv_local = round_up(fixed.bytes("kv_local"), arena_alignment);
  const std::uint64_t kv_global = round_up(fixed.bytes("kv_global"), arena_alignment);
  r.workspace_bytes = fixed.arena_bytes - in_arena_weights - kv_local - kv_global;
  const std::uint64_t weights_paid = gpu ? in_arena_weights : r.weights_bytes;

  const std::uint64_t blocks_per_seq = blocks_per_sequence(c);
  const std::uint64_t tokens_per_sequence = blocks_per_seq * c.block_tokens;
  r.needed_tokens = tokens_per_sequence * c.max_batch;
  r.weights_fit = weights_paid <= r.budget_bytes;

  // What is left for KV once the fixed costs are paid (signed: it may not be left at all).
  const std::int64_t for_kv = std::int64_t(r.budget_bytes) - std::int64_t(weights_paid) -
                              std::int64_t(r.workspace_bytes) - std::int64_t(r.reserve_bytes);
  r.pool_bytes_available = for_kv - std::int64_t(kv_local);
  const std::uint64_t per_sequence = r.ring_bytes_per_sequence + blocks_per_seq * r.kv_block_bytes;
  const std::int64_t for_sequences = for_kv - std::int64_t(r.prefix_snapshot_bytes);
  r.max_sequences = for_sequences > 0 && per_sequence > 0 ? std::uint64_t(for_sequences) / per_sequence : 0;

  if (r.kv_block_bytes > 0) {
    // The region is rounded up to the alignment: keep that much aside.
    const std::int64_t usable = r.pool_bytes_available - std::int64_t(arena_alignment - 1);
    r.kv_capacity_blocks = usable > 0 ? std::uint64_t(usable) / r.kv_block_bytes : 0;
    r.kv_capacity_tokens = r.kv_capacity_blocks * c.block_tokens;
    r.headroom_bytes = r.pool_bytes_available - std::int64_t(r.needed_tokens * r.kv_bytes_per_token);
    r.kv_allocated_blocks = c.kv_fill ? r.kv_capacity_blocks : allocated_blocks(c);
  } else {
    r.kv_capacity_tokens = r.max_sequences * tokens_per_sequence;
    r.headroom_bytes = r.pool_bytes_available;
  }
  r.kv_allocated_tokens = r.kv_allocated_blocks * c.block_tokens;
  r.kv_pool_bytes = r.kv_allocated_blocks * r.kv_block_bytes;
  r.fits = r.weights_fit && r.pool_bytes_available >= 0 && r.kv_capacity_tokens >= r.needed_tokens &&
           r.kv_allocated_blocks <= (r.kv_block_bytes > 0 ? r.kv_capacity_blocks : 0);
  in.global_blocks = r.kv_allocated_blocks;
  r.layout = r.kv_allocated_blocks == fixed.global_blocks ? fixed : make_arena_layout<Model>(in);
  r.arena_bytes = r.layout.arena_bytes;
  r.host_staging_bytes = r.layout.host_bytes;
  return r;
}

// The longest max_seq_len (a multiple of block_tokens, or the model's own limit) that fits at
// cfg.max_batch with everything else unchanged; 0 when not even one block does. Fitting only gets
// harder as max_seq_len grows (more blocks per sequence, longer rings up to the window), so a
// binary search over block counts finds it.
template <class Model>
constexpr std::uint32_t max_context(const device_info& d, serving_config c, std::uint64_t weights_bytes = 0) {
  const std::uint64_t limit = std::uint64_t(Model::max_positions);
  const std::uint64_t b = c.block_tokens == 0 ? 1 : c.block_tokens;
  auto length = [&](std::uint64_t blocks) { return std::uint32_t(blocks * b < limit ? blocks * b : limit); };
  auto fits = [&](std::uint64_t blocks) {
    c.max_seq_len = length(blocks);
    return make_plan<Model>(d, c, weights_bytes).fits;
  };
  std::uint64_t lo = 0, hi = ceil_div(limit, b);  // fits(lo) (vacuously for 0); search (lo, hi]
  if (fits(hi)) return length(hi);
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (fits(mid)) lo = mid; else hi = mid;
  }
  return lo == 0 ? 0 : length(lo);
}

// The compile-time plan: the same numbers as make_plan, as constants of a type, so a deployment
// can static_assert on them (or call require_fit<memory_plan<...>>() for a readable failure).
template <class Model, device_descriptor Device, serving_config Config>
struct memory_plan {
  using model = Model;
  using device = Device;
  static constexpr serving_config config = Config;
  static constexpr plan_result result = make_plan<Model>(device_info_of<Device>(), Config);
  static constexpr arena_layout layout = result.layout;

  static constexpr bool valid = result.valid();
  static constexpr bool weights_fit = result.weights_fit;
  static constexpr bool fits = result.fits;
  static constexpr std::uint64_t budget_bytes = result.budget_bytes;
  static constexpr std::uint64_t weights_bytes = result.weights_bytes;
  static constexpr std::uint64_t workspace_bytes = result.workspace_bytes;
  static constexpr std::uint64_t reserve_bytes = result.reserve_bytes;
  static constexpr std::uint64_t kv_bytes_per_token = result.kv_bytes_per_token;
  static constexpr std::uint64_t ring_bytes = result.ring_bytes;
  static constexpr std::uint64_t kv_capacity_blocks = result.kv_capacity_blocks;
  static constexpr std::uint64_t kv_capacity_tokens = result.kv_capacity_tokens;
  static constexpr std::uint64_t needed_tokens = result.needed_tokens;
  static constexpr std::uint64_t arena_bytes = result.arena_bytes;
  static constexpr std::int64_t headroom_bytes = result.headroom_bytes;
};

}  // namespace gemmaforge
