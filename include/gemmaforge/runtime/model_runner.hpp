#pragma once
// model_runner: what the scheduler (runtime/scheduler.hpp) needs of a model, behind one virtual
// interface, so that the scheduler is compiled once whatever the model, the backend and the KV
// type. The scheduler asks for a handful of sizes, keeps its step records and sampler workspace
// in regions of the runner's planned arena, drives the KV pool's block bookkeeping, and calls
// step() once per scheduler step. runtime/runner.hpp is the one implementation: the template
// that owns the executor, the weights' view, the KV pool and the arena, and calls forward().
//
// None of these calls allocates: they are made on the step path.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <gemmaforge/plan/arena.hpp>
#include <gemmaforge/plan/serving_config.hpp>
#include <gemmaforge/step/step.hpp>

namespace gemmaforge {

// The outcome of admitting a request into the KV pool (kv_pool::admit).
struct kv_admission {
  std::int32_t slot = -1;          // -1: does not fit now (try again after others finish)
  std::int32_t reused_tokens = 0;  // prompt tokens whose KV came from the prefix cache
};

class model_runner {
 public:
  virtual ~model_runner() = default;
  model_runner() = default;
  model_runner(const model_runner&) = delete;
  model_runner& operator=(const model_runner&) = delete;

  // ---- the model's sizes the scheduler checks requests against
  virtual std::int32_t vocab() const = 0;
  virtual std::int32_t max_positions() const = 0;

  // ---- the deployment: the limits it was built for (with its KV type) and the arena it carved
  virtual const serving_config& limits() const = 0;
  virtual const arena_layout& layout() const = 0;
  // The host-visible base of a planned region (the step_* and sampler regions the scheduler fills).
  virtual std::byte* region(std::string_view name) = 0;

  // ---- KV pool bookkeeping (kv/kv_pool.hpp documents each call)
  virtual std::int32_t total_blocks() const = 0;
  virtual std::int32_t used_blocks() const = 0;
  virtual std::int32_t reserved_blocks() const = 0;
  virtual std::int32_t cached_only_blocks() const = 0;
  virtual std::int32_t blocks_for(std::int32_t max_total) const = 0;
  virtual bool could_ever_fit(std::int32_t max_total) const = 0;
  virtual bool could_admit_together(std::int32_t n, std::int32_t max_total) const = 0;
  virtual kv_admission admit(const std::int32_t* ids, std::int32_t n_prompt, std::int32_t max_total, bool reuse) = 0;
  virtual void ensure_blocks(std::int32_t slot, std::int32_t n_tokens) = 0;
  virtual std::int32_t cached_tokens(std::int32_t slot) const = 0;
  virtual void set_cached_tokens(std::int32_t slot, std::int32_t n) = 0;
  virtual void register_prefix(std::int32_t slot, const std::int32_t* ids, std::int32_t n_cached) = 0;
  virtual void release(std::int32_t slot) = 0;

  // ---- one forward pass over the batch; returns its logits on the host, [n_logits_rows][vocab],
  // valid until the next step (the scheduler consumes the rows in place: penalties, masks).
  virtual const float* step(const step_batch& batch) = 0;
};

}  // namespace gemmaforge
