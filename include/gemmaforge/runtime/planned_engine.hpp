#pragma once
// engine<Model, Backend, Config>: the engine of a deployment whose limits are compile-time facts.
//
//   constexpr gf::serving_config cfg{.max_seq_len = 8192, .max_batch = 1};
//   gf::engine<gf::models::openchat_3_5_0106_gemma, gf::backend::cuda<gf::devices::rtx4090>, cfg> eng(...);
//
// The type refuses to exist when the plan does not fit: the memory plan of (Model, the backend's
// device, Config) is checked with require_fit, whose error names the numbers. The KV element type
// comes from Config.kv. The engine carves exactly the layout the plan summed (plan::layout):
// the KV pool holds the plan's allocated blocks (max_batch full-length sequences, or every block
// the budget holds when Config.kv_fill), the rings include the prefix cache's snapshots, and the
// workspace is sized for Config's step limits.
#include <cstdint>
#include <memory>
#include <type_traits>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/plan/plan.hpp>
#include <gemmaforge/runtime/engine.hpp>
#include <gemmaforge/tokenizer/token_text.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace gemmaforge {

// dtype tag -> KV element type.
template <dtype D>
struct kv_element;
template <> struct kv_element<dtype::f32> { using type = float; };
template <> struct kv_element<dtype::f16> { using type = f16; };
template <> struct kv_element<dtype::bf16> { using type = bf16; };
template <> struct kv_element<dtype::fp8_e4m3> { using type = fp8_e4m3; };
template <> struct kv_element<dtype::int8> { using type = std::int8_t; };
template <dtype D>
using kv_element_t = typename kv_element<D>::type;

// The runtime limits of a serving_config (the plan's vocabulary) as the engine takes them, with
// the KV pool's blocks fixed to what the plan allocates.
constexpr serving_config planned_limits(const plan_result& p) {
  serving_config c = p.config;
  c.kv_blocks = std::uint32_t(p.kv_allocated_blocks);
  c.kv_fill = false;
  return c;
}

template <class Model, class Backend, serving_config Config>
class engine : public basic_engine<Model, typename Backend::executor, kv_element_t<Config.kv>> {
 public:
  using plan = memory_plan<Model, typename Backend::device, Config>;
  static_assert(require_fit<plan>(), "this deployment does not fit its device (see the plan's numbers above)");
  using base = basic_engine<Model, typename Backend::executor, kv_element_t<Config.kv>>;
  using executor_type = typename Backend::executor;

  // `weights` must outlive the engine. With a tokenizer, text is streamed and its end-of-sequence
  // and <end_of_turn> ids stop generation.
  explicit engine(const model_weights<Model>& weights, std::shared_ptr<const tokenizer> tok = nullptr,
                  executor_type exec = executor_type{})
      : base(weights, config_for(tok.get()), std::move(exec), tok ? std::make_shared<tokenizer_text>(tok) : nullptr) {
    // The host layout is a compile-time fact: what was carved is what was planned, byte for byte.
    if (this->layout().backend == backend_kind::cpu && this->layout().arena_bytes != plan::result.arena_bytes)
      throw error(errc::internal, "engine: the carved arena differs from the plan's layout");
  }

 private:
  static engine_config config_for(const tokenizer* tok) {
    engine_config c;
    c.limits = planned_limits(plan::result);
    if (tok) c.stop_ids = tok->end_of_generation_ids();
    return c;
  }
};

}  // namespace gemmaforge
