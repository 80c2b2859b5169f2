#pragma once
// runner<Model, Executor, KvElem>: the model_runner (runtime/model_runner.hpp) of one descriptor on
// one backend with one KV type, and the only templated part of the engine. It owns the executor,
// the executor's view of the weights, the planned arena and the KV pool carved from it, and runs
// forward() in step(). Everything else (queues, admission, batching, sampling) is the scheduler's,
// compiled once.
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
#include <gemmaforge/plan/serving_config.hpp>
#include <gemmaforge/runtime/forward.hpp>
#include <gemmaforge/runtime/model_runner.hpp>

namespace gemmaforge {

template <class Model, class Executor, class KvElem>
class runner final : public model_runner {
  static_assert(Model::runnable, "this descriptor is for planning only; the runtime runs Gemma models");

 public:
  using model_type = Model;
  using pool_type = kv_pool<Model, KvElem>;

  // `weights` must outlive the runner. `limits` are checked here (the planner's messages) and
  // against the model's positions, then the layout is made and the arena allocated and carved.
  runner(const model_weights<Model>& weights, serving_config limits, const forward_options& fwd, Executor exec)
      : exec_(std::move(exec)), weights_(exec_.prepare_weights(weights)), forward_(fwd) {
    limits.kv = dtype_of<KvElem>::value;
    if (const config_error e = check(limits); e != config_error::none)
      throw error(errc::invalid_argument, std::string(to_string(e)));
    if (limits.max_seq_len > std::uint32_t(Model::max_positions))
      throw error(errc::invalid_argument, "max_seq_len " + std::to_string(limits.max_seq_len) + " exceeds " +
                                              std::string(Model::name) + "'s " + std::to_string(Model::max_positions) +
                                              " positions");
    limits_ = limits;
    layout_inputs in;
    in.config = limits;
    exec_.describe_layout(in);
    layout_ = make_arena_layout<Model>(in);
    allocate_arena();
  }

  std::int32_t vocab() const override { return Model::vocab; }
  std::int32_t max_positions() const override { return Model::max_positions; }
  const serving_config& limits() const override { return limits_; }
  const arena_layout& layout() const override { return layout_; }
  std::byte* region(std::string_view name) override { return layout_.pointer(name, mem_.arena, mem_.host); }

  std::int32_t total_blocks() const override { return pool_->total_blocks(); }
  std::int32_t used_blocks() const override { return pool_->used_blocks(); }
  std::int32_t reserved_blocks() const override { return pool_->reserved_blocks(); }
  std::int32_t cached_only_blocks() const override { return pool_->cached_only_blocks(); }
  std::int32_t blocks_for(std::int32_t max_total) const override { return pool_->blocks_for(max_total); }
  bool could_ever_fit(std::int32_t max_total) const override { return pool_->could_ever_fit(max_total); }
  bool could_admit_together(std::int32_t n, std::int32_t max_total) const override {
    return pool_->could_admit_together(n, max_total);
  }
  kv_admission admit(const std::int32_t* ids, std::int32_t n_prompt, std::int32_t max_total, bool reuse) override {
    const auto a = pool_->admit(ids, n_prompt, max_total, reuse);
    return {a.slot, a.reused_tokens};
  }
  void ensure_blocks(std::int32_t slot, std::int32_t n_tokens) override { pool_->ensure_blocks(slot, n_tokens); }
  std::int32_t cached_tokens(std::int32_t slot) const override { return pool_->cached_tokens(slot); }
  void set_cached_tokens(std::int32_t slot, std::int32_t n) override { pool_->set_cached_tokens(slot, n); }
  void register_prefix(std::int32_t slot, const std::int32_t* ids, std::int32_t n_cached) override {
    pool_->register_prefix(slot, ids, n_cached);
  }
  void release(std::int32_t slot) override { pool_->release(slot); }

  // The one call site of forward(): the step's batch in, its logits rows out on the host.
  const float* step(const step_batch& batch) override {
    forward<Model>(exec_, weights_, *pool_, batch, buffers_, forward_);
    return exec_.logits_to_host(buffers_.logits, std::size_t(batch.n_logits_rows) * Model::vocab);
  }

  pool_type& pool() { return *pool_; }
  Executor& executor() { return exec_; }

 private:
  // Everything comes from the layout: the executor allocates its spaces and carves its scratch,
  // the runner carves the pool and the activations by region name (the scheduler its step records).
  void allocate_arena() {
    const arena_layout& L = layout_;
    const serving_config& c = limits_;
    kv_pool_config pc;
    pc.block_tokens = std::int32_t(c.block_tokens);
    pc.max_batch = std::int32_t(c.max_batch);
    pc.max_seq_len = std::int32_t(c.max_seq_len);
    pc.prefix_slots = std::int32_t(c.prefix_slots);
    pc.global_blocks = std::int32_t(L.global_blocks);
    if (pool_type::global_bytes(pc) != L.bytes("kv_global") || pool_type::local_bytes(pc) != L.bytes("kv_local"))
      throw error(errc::internal, "runner: the KV pool's size differs from the planned layout");
    // The arena first: an absurd plan fails here with its numbers, before anything else is sized.
    try {
      mem_ = exec_.template allocate_arena<Model, KvElem>(L);
    } catch (const error& e) {
      if (e.code() != errc::out_of_memory) throw;
      const std::uint64_t kv = round_up(L.bytes("kv_global"), arena_alignment) + round_up(L.bytes("kv_local"), arena_alignment);
      throw error(errc::out_of_memory,
                  "cannot start the engine: its plan needs " + format_bytes(L.total()) + " = KV pool " + format_bytes(kv) +
                      " (" + std::to_string(L.global_blocks) + " blocks of " + std::to_string(c.block_tokens) +
                      " tokens: max_batch " + std::to_string(c.max_batch) + " x max_seq_len " +
                      std::to_string(c.max_seq_len) + ") + workspace " + format_bytes(L.total() - kv) + "; " + e.what() +
                      ". Lower max_seq_len or max_batch, or use a smaller KV type");
    }
    auto floats = [&](std::string_view name) { return reinterpret_cast<float*>(region(name)); };
    pool_ = std::make_unique<pool_type>(pc, region("kv_global"), region("kv_local"), exec_.kv_copy());
    buffers_.x = floats("x");
    buffers_.xn = floats("xn");
    buffers_.q = floats("q");
    buffers_.attn = floats("attn");
    buffers_.k = floats("k");
    buffers_.v = floats("v");
    buffers_.gate = floats("gate");
    buffers_.up = floats("up");
    buffers_.logits = floats("logits");
  }

  Executor exec_;
  // The executor's view of the weights: the caller's host views on the CPU, device copies on a GPU.
  const model_weights<Model>& weights_;
  forward_options forward_;
  serving_config limits_{};
  arena_layout layout_;
  arena_memory mem_;
  std::unique_ptr<pool_type> pool_;
  forward_buffers buffers_;
};

}  // namespace gemmaforge
