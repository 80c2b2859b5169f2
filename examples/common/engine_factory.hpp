#pragma once
// Internal to gemmaforge_programs: the concrete engine behind program_engine for one descriptor,
// one KV element type and one executor, and the per-family factory functions (one translation
// unit each, so the instantiations compile in parallel and each binary links them once).
#include <chrono>
#include <memory>
#include <string>

#include <gemmaforge/core/type_list.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/runtime/engine.hpp>
#include <gemmaforge/runtime/text_stream.hpp>
#include <gemmaforge/tokenizer/token_text.hpp>

#include "program_engine.hpp"

namespace gemmaforge::programs::detail {

engine_config make_engine_config(const engine_options& o, int model_max_positions, const std::vector<std::int32_t>& stop_ids);

template <class Model, class Executor, class KvElem>
class concrete_engine final : public program_engine {
 public:
  concrete_engine(bound_model<Model>&& bound, std::shared_ptr<const tokenizer> tok, const engine_options& o, Executor exec,
                  std::chrono::steady_clock::time_point t0)
      : bound_(std::move(bound)),
        engine_(bound_.weights(), configure(tok, o), std::move(exec),
                tok ? std::make_shared<tokenizer_text>(tok) : nullptr) {
    tok_ = std::move(tok);
    info_.name = std::string(Model::name);
    info_.path = bound_.file().path();
    info_.arch = Model::arch;
    info_.chat = Model::chat;
    info_.vocab = Model::vocab;
    info_.hidden = Model::hidden;
    info_.layers = Model::n_layers;
    info_.max_positions = Model::max_positions;
    info_.weight_bytes = bound_.summary().total_bytes;
    info_.weights = bound_.summary().to_string();
    info_.arena_bytes = engine_.arena_bytes();
    info_.kv = std::string(to_string(dtype_of<KvElem>::value));
    info_.isa = engine_.executor().description();
    load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  ~concrete_engine() override { engine_.shutdown(); }

  request_handle submit(generation_request r) override { return engine_.submit(std::move(r)); }
  request_handle generate(generation_request r) override { return engine_.generate(std::move(r)); }
  void step() override { engine_.step(); }
  void run_until_idle() override { engine_.run_until_idle(); }
  bool idle() const override { return engine_.idle(); }
  engine_stats stats() const override { return engine_.stats(); }
  const engine_config& config() const override { return engine_.config(); }
  void shutdown() override { engine_.shutdown(); }

 private:
  engine_config configure(const std::shared_ptr<const tokenizer>& tok, const engine_options& o) {
    if (tok) {
      stop_ids_.push_back(tok->eos_id());
      const int eot = tok->piece_to_id("<end_of_turn>");
      if (eot >= 0) stop_ids_.push_back(eot);
    }
    return make_engine_config(o, Model::max_positions, stop_ids_);
  }

  bound_model<Model> bound_;
  basic_engine<Model, Executor, KvElem> engine_;
};

// Bind the already-opened file as the model called `name` from List and start an engine with the
// KV type the options ask for. Returns nullptr when `name` is not in List.
template <class List, template <class> class MakeExecutor>
std::unique_ptr<program_engine> make_engine_from(std::shared_ptr<const model_file> file, std::string_view name,
                                                 std::shared_ptr<const tokenizer> tok, const engine_options& o,
                                                 std::chrono::steady_clock::time_point t0) {
  std::unique_ptr<program_engine> out;
  for_each_type(List{}, [&](auto tag) {
    using M = typename decltype(tag)::type;
    if constexpr (M::runnable) {
      if (out || M::name != name) return;
      auto bound = bind_model<M>(file);
      auto exec = MakeExecutor<M>::make(o);
      using E = decltype(exec);
      switch (o.kv) {
        case dtype::f32: out = std::make_unique<concrete_engine<M, E, float>>(std::move(bound), tok, o, std::move(exec), t0); break;
        case dtype::bf16: out = std::make_unique<concrete_engine<M, E, bf16>>(std::move(bound), tok, o, std::move(exec), t0); break;
        case dtype::f16: out = std::make_unique<concrete_engine<M, E, f16>>(std::move(bound), tok, o, std::move(exec), t0); break;
        case dtype::fp8_e4m3: out = std::make_unique<concrete_engine<M, E, fp8_e4m3>>(std::move(bound), tok, o, std::move(exec), t0); break;
        case dtype::int8: out = std::make_unique<concrete_engine<M, E, std::int8_t>>(std::move(bound), tok, o, std::move(exec), t0); break;
      }
    }
  });
  return out;
}

// One per family (engines_<family>.cpp): nullptr when the name is not one of theirs.
using factory_fn = std::unique_ptr<program_engine> (*)(std::shared_ptr<const model_file>, std::string_view,
                                                        std::shared_ptr<const tokenizer>, const engine_options&,
                                                        std::chrono::steady_clock::time_point);
std::unique_ptr<program_engine> make_gemma1_engine(std::shared_ptr<const model_file>, std::string_view,
                                                   std::shared_ptr<const tokenizer>, const engine_options&,
                                                   std::chrono::steady_clock::time_point);
std::unique_ptr<program_engine> make_gemma2_engine(std::shared_ptr<const model_file>, std::string_view,
                                                   std::shared_ptr<const tokenizer>, const engine_options&,
                                                   std::chrono::steady_clock::time_point);
std::unique_ptr<program_engine> make_gemma3_engine(std::shared_ptr<const model_file>, std::string_view,
                                                   std::shared_ptr<const tokenizer>, const engine_options&,
                                                   std::chrono::steady_clock::time_point);
std::unique_ptr<program_engine> make_tiny_engine(std::shared_ptr<const model_file>, std::string_view,
                                                 std::shared_ptr<const tokenizer>, const engine_options&,
                                                 std::chrono::steady_clock::time_point);

}  // namespace gemmaforge::programs::detail
