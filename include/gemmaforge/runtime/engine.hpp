#pragma once
// basic_engine<Model, Executor, KvElem>: the scheduler (runtime/scheduler.hpp, compiled once)
// over a runner of this model, backend and KV type (runtime/runner.hpp, the templated part).
// The runner owns the executor, the executor's view of the weights, the planned arena and the KV
// pool; the scheduler owns the requests. This class only builds the two and keeps the typed
// accessors (pool(), executor()) that tests and benches use.
#include <memory>
#include <utility>

#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/runtime/runner.hpp>
#include <gemmaforge/runtime/scheduler.hpp>

namespace gemmaforge {

template <class Model, class Executor, class KvElem>
class basic_engine : public scheduler {
 public:
  using model_type = Model;
  using runner_type = gemmaforge::runner<Model, Executor, KvElem>;  // qualified: scheduler::runner() hides it
  using pool_type = typename runner_type::pool_type;

  // `weights` must outlive the engine (the io layer's bound_model owns them); `text` may be null
  // (then requests must use decode_text = false).
  basic_engine(const model_weights<Model>& weights, const engine_config& cfg, Executor exec,
               std::shared_ptr<const token_text> text = nullptr)
      : scheduler(std::make_unique<runner_type>(weights, cfg.limits, cfg.forward, std::move(exec)), cfg, std::move(text)) {}

  // The scheduler's runner is the one built above.
  runner_type& typed_runner() { return static_cast<runner_type&>(runner()); }
  pool_type& pool() { return typed_runner().pool(); }
  Executor& executor() { return typed_runner().executor(); }
};

}  // namespace gemmaforge
