#pragma once
// Internal to gemmaforge_programs: the concrete engine behind program_engine for one descriptor,
// one KV element type and one executor, and the per-family factory functions (one translation
// unit each, so the instantiations compile in parallel and each binary links them once).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <gemmaforge/core/type_list.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/plan/devices.hpp>
#include <gemmaforge/plan/startup_check.hpp>
#include <gemmaforge/runtime/planned_engine.hpp>
#include <gemmaforge/runtime/runner.hpp>
#include <gemmaforge/runtime/scheduler.hpp>
#include <gemmaforge/runtime/text_stream.hpp>
#include <gemmaforge/tokenizer/token_text.hpp>

#include "program_engine.hpp"

namespace gemmaforge::programs::detail {

// The start-up facts of a program: the device the plan is checked against, and the weights' bytes
// as the file stores them (the budget's weights term).
struct startup {
  device_info device;
  std::uint64_t file_weight_bytes = 0;
  // bf16 or, when some tensor is block-quantized, q4_k_m: what the plan needs of the scheme (the
  // CUDA executor's quantized-activation scratch; the weights term is file_weight_bytes).
  weight_scheme weights = weight_scheme::bf16;
  std::chrono::steady_clock::time_point t0;
};

// The flags' limits for one descriptor: the default context (min(its positions, 8192)), the KV
// type the executor will store, and a GPU's "fill the budget".
serving_config limits_for(const engine_options& o, int model_max_positions, bool gpu);
engine_config make_engine_config(const engine_options& o, const serving_config& planned, const std::vector<std::int32_t>& stop_ids);
device_info host_device_info();
std::uint64_t file_weight_bytes(const model_file& f, bool gpu);
weight_scheme file_weight_scheme(const model_file& f);
// The GPU as CUDA reports it (engines_cuda.cu): total memory, the plan's reserve for the context.
device_info cuda_device_info(int device);

// The engine behind program_engine, whatever the model: the scheduler (compiled once) over a
// runner, and the bound weights the runner reads (`weights_owner`: any owner, kept until the
// scheduler is gone). Defined in program_engine.cpp; `info` comes filled but for arena_bytes.
std::unique_ptr<program_engine> make_program_engine(std::shared_ptr<const void> weights_owner,
                                                    std::unique_ptr<model_runner> runner,
                                                    std::shared_ptr<const tokenizer> tok, const engine_config& cfg,
                                                    model_info info, std::chrono::steady_clock::time_point t0);

// What program_engine says about a bound model.
template <class Model>
model_info describe_model(const bound_model<Model>& bound) {
  model_info info;
  info.name = std::string(Model::name);
  info.path = bound.file().path();
  info.arch = Model::arch;
  info.chat = Model::chat;
  info.vocab = Model::vocab;
  info.hidden = Model::hidden;
  info.layers = Model::n_layers;
  info.max_positions = Model::max_positions;
  info.weight_bytes = bound.summary().total_bytes;
  info.weights = bound.summary().to_string();
  return info;
}

// What this build of the programs instantiates: the descriptors of GEMMAFORGE_PROGRAM_MODELS and
// the CPU KV types of GEMMAFORGE_PROGRAM_KV (CMake cache lists; empty = all). Every engine is one
// instantiation per (descriptor, KV type): 54 of them make most of the programs' compile, and
// scripts/demo, which needs one (gemma-3-270m, bf16), builds only that one.
#ifndef GF_PROGRAM_MODELS
#define GF_PROGRAM_MODELS ""
#endif
#ifndef GF_PROGRAM_KV
#define GF_PROGRAM_KV ""
#endif
// `name` is in `list` (names separated by commas), or the list is empty.
constexpr bool listed(std::string_view list, std::string_view name) {
  if (list.empty()) return true;
  while (!list.empty()) {
    const auto end = list.find(',');
    if (list.substr(0, end) == name) return true;
    if (end == std::string_view::npos) break;
    list.remove_prefix(end + 1);
  }
  return false;
}
static_assert(listed("", "a") && listed("a,bc", "bc") && !listed("a,bc", "b") && !listed("ab", "a"));
template <class M>
inline constexpr bool program_builds_model = M::runnable && listed(GF_PROGRAM_MODELS, M::name);
constexpr bool program_builds_kv(dtype t) { return listed(GF_PROGRAM_KV, to_string(t)); }


// Plan the deployment of the model called `name` from List on the start-up device (refusing with
// the numbers when it does not fit, before any weight is read), bind the already-opened file and
// start an engine that carves that plan's layout, with the KV type the options ask for (one of
// KvTypes). Returns nullptr when `name` is not in List.
// MakeExecutor<Model>::template make<KvElem>(options, engine_config, weights) builds the executor.
template <class List, template <class> class MakeExecutor, class KvTypes>
std::unique_ptr<program_engine> make_engine_from(std::shared_ptr<const model_file> file, std::string_view name,
                                                 std::shared_ptr<const tokenizer> tok, const engine_options& o,
                                                 const startup& st) {
  std::unique_ptr<program_engine> out;
  const auto t0 = st.t0;
  for_each_type(List{}, [&](auto tag) {
    using M = typename decltype(tag)::type;
    if constexpr (program_builds_model<M>) {
      if (out || M::name != name) return;
      const auto stops = tok ? tok->end_of_generation_ids() : std::vector<std::int32_t>{};
      const bool gpu = st.device.kind == device_kind::cuda;
      serving_config limits = limits_for(o, M::max_positions, gpu);
      limits.weights = st.weights;
      const plan_result plan = plan_at_startup<M>(st.device, limits, o.fit, st.file_weight_bytes);
      const std::string line = capacity_line(plan) + (o.fit ? " (--fit: context " + std::to_string(plan.config.max_seq_len) + ")" : "");
      if (!o.quiet) std::fprintf(stderr, "%s\n", line.c_str());
      const engine_config cfg = make_engine_config(o, planned_limits(plan), stops);
      auto bound = bind_model<M>(file);
      bool matched = false;
      auto start = [&](auto kv_tag) {
        using Kv = typename decltype(kv_tag)::type;
        if constexpr (program_builds_kv(dtype_of<Kv>::value)) {
          if (matched || dtype_of<Kv>::value != o.limits.kv) return;
          matched = true;
          auto exec = MakeExecutor<M>::template make<Kv>(o, cfg, bound.weights());
          auto owner = std::make_shared<const bound_model<M>>(std::move(bound));
          model_info info = describe_model(*owner);
          info.plan = line;
          info.kv = std::string(to_string(dtype_of<Kv>::value));
          // The runner is the only code instantiated per (model, executor, KV type).
          auto run = std::make_unique<runner<M, decltype(exec), Kv>>(owner->weights(), cfg.limits, cfg.forward, std::move(exec));
          info.isa = run->executor().description();
          out = make_program_engine(std::move(owner), std::move(run), tok, cfg, std::move(info), t0);
        }
      };
      for_each_type(KvTypes{}, start);
      if (!matched)
        throw error(errc::invalid_argument, "KV type " + std::string(to_string(o.limits.kv)) + " is not built into the programs for the " +
                                                o.backend + " backend" +
                                                (std::string_view(GF_PROGRAM_KV).empty()
                                                     ? std::string()
                                                     : std::string(" (this build has GEMMAFORGE_PROGRAM_KV=") + GF_PROGRAM_KV +
                                                           "; the full build, cmake -S . -B build, has every type)"));
    }
  });
  return out;
}

// The KV element types the CPU programs offer (the CUDA programs offer bf16 and fp8: the types a
// 4090 deployment chooses between, which bounds the nvcc instantiations).
using cpu_kv_types = type_list<float, bf16, f16, fp8_e4m3, std::int8_t>;
using cuda_kv_types = type_list<bf16, fp8_e4m3>;

// One per family (engines_<family>.cpp): nullptr when the name is not one of theirs.
using factory_fn = std::unique_ptr<program_engine> (*)(std::shared_ptr<const model_file>, std::string_view,
                                                        std::shared_ptr<const tokenizer>, const engine_options&, const startup&);
std::unique_ptr<program_engine> make_gemma1_engine(std::shared_ptr<const model_file>, std::string_view,
                                                   std::shared_ptr<const tokenizer>, const engine_options&, const startup&);
std::unique_ptr<program_engine> make_gemma2_engine(std::shared_ptr<const model_file>, std::string_view,
                                                   std::shared_ptr<const tokenizer>, const engine_options&, const startup&);
std::unique_ptr<program_engine> make_gemma3_engine(std::shared_ptr<const model_file>, std::string_view,
                                                   std::shared_ptr<const tokenizer>, const engine_options&, const startup&);

// The test models (model/tiny.hpp) are not in the programs: test binaries link
// engines_test_models.cpp, which fills this in at start-up with the identification over the real
// and the test descriptors and the test descriptors' CPU factory (the programs' tests run them on
// the golden fixtures).
struct test_models_hook {
  std::string_view (*identify)(const model_file&) = nullptr;
  factory_fn make = nullptr;       // CPU
  factory_fn make_cuda = nullptr;  // CUDA (engines_cuda_test_models.cu, in CUDA builds)
};
test_models_hook& test_models();
// The CUDA programs (engines_cuda_*.cu, built when CUDA is): same contract.
std::unique_ptr<program_engine> make_cuda_engine(std::shared_ptr<const model_file>, std::string_view,
                                                 std::shared_ptr<const tokenizer>, const engine_options&, const startup&);

}  // namespace gemmaforge::programs::detail
