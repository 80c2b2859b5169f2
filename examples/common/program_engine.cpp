// open_engine(): open the file once, identify the descriptor, load the tokenizer, and hand the
// file to the factory of the descriptor's family.
#include "program_engine.hpp"

#include <cstdlib>

#include <gemmaforge/backend/cpu/host_memory.hpp>
#include <gemmaforge/io/default_model.hpp>
#include <gemmaforge/io/model_file.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/model/registry.hpp>

#include "engine_factory.hpp"

namespace gemmaforge::programs {

const tokenizer& program_engine::tok() const {
  if (!tok_)
    throw error(errc::invalid_argument, info_.path + " has no tokenizer (an HF checkpoint without tokenizer.model): "
                                                     "pass token ids instead of text");
  return *tok_;
}

std::vector<std::int32_t> program_engine::encode(std::string_view text, bool add_bos, std::size_t max_tokens) const {
  const auto ids = tok().encode(text, {.add_bos = add_bos, .max_tokens = max_tokens});
  return {ids.begin(), ids.end()};
}

std::vector<std::int32_t> program_engine::chat_prompt(std::span<const chat_message> messages, const chat_options& o) const {
  const auto ids = render_chat_ids(tok(), info_.chat, messages, o);
  return {ids.begin(), ids.end()};
}

std::string program_engine::decode(std::span<const std::int32_t> ids) const {
  const std::vector<int> v(ids.begin(), ids.end());
  return tok().decode(v);
}

std::filesystem::path default_model_path() { return gemmaforge::default_model_path(); }

namespace detail {

serving_config limits_for(const engine_options& o, int model_max_positions, bool gpu) {
  serving_config c = o.limits;
  if (c.max_seq_len == 0) c.max_seq_len = std::uint32_t(std::min(model_max_positions, 8192));
  if (o.fit) c.max_seq_len = std::uint32_t(model_max_positions);  // the search starts from the model's limit
  // A GPU's pool takes every block its budget holds (as vLLM's does), unless told how many.
  c.kv_fill = gpu && c.kv_blocks == 0;
  return c;
}

engine_config make_engine_config(const engine_options& o, const serving_config& planned, const std::vector<std::int32_t>& stop_ids) {
  engine_config c;
  c.limits = planned;
  c.max_queue = o.max_queue;
  c.threaded = o.threaded;
  c.stop_ids = stop_ids;
  return c;
}

// The host as the plan sees it: what the system reports available (MemAvailable, or the cgroup's
// limit less its usage), no reserve. When nothing is reported, the physical total, else 1 TiB
// (the executor's own check then has nothing to compare with either).
device_info host_device_info() {
  const cpu::host_memory m = cpu::query_host_memory();
  device_info d;
  d.name = "host";
  static std::string source;  // device_info holds views: keep the text alive
  source = m.source.empty() ? std::string("memory not reported") : m.source;
  d.description = source;
  d.kind = device_kind::host;
  d.memory_bytes = !m.source.empty() ? m.available : m.total > 0 ? m.total : (std::uint64_t(1) << 40);
  return d;
}

// Bytes of every tensor the file stores (a GPU pads each to 256 bytes and adds RoPE tables).
std::uint64_t file_weight_bytes(const model_file& f, bool gpu) {
  std::uint64_t n = 0;
  for (const source_tensor& t : f.tensors()) n += gpu ? round_up(t.n_bytes, 256) : t.n_bytes;
  return gpu ? n + 64 * KiB : n;
}

weight_scheme file_weight_scheme(const model_file& f) {
  for (const source_tensor& t : f.tensors())
    if (t.format && is_block_quantized(*t.format)) return weight_scheme::q4_k_m;
  return weight_scheme::bf16;
}

test_models_hook& test_models() {
  static test_models_hook hook;
  return hook;
}

namespace {

// The scheduler behind every program_engine, whatever the model (make_program_engine).
class scheduled_engine final : public program_engine {
 public:
  scheduled_engine(std::shared_ptr<const void> weights_owner, std::unique_ptr<model_runner> runner,
                   std::shared_ptr<const tokenizer> tok, const engine_config& cfg, model_info info,
                   std::chrono::steady_clock::time_point t0)
      : weights_owner_(std::move(weights_owner)),
        engine_(std::move(runner), cfg, tok ? std::make_shared<tokenizer_text>(tok) : nullptr) {
    tok_ = std::move(tok);
    info_ = std::move(info);
    info_.arena_bytes = engine_.arena_bytes();
    load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  ~scheduled_engine() override { engine_.shutdown(); }

  request_handle submit(generation_request r) override { return engine_.submit(std::move(r)); }
  std::vector<request_handle> submit_group(std::vector<generation_request> rs) override { return engine_.submit_group(std::move(rs)); }
  request_handle generate(generation_request r) override { return engine_.generate(std::move(r)); }
  void step() override { engine_.step(); }
  void run_until_idle() override { engine_.run_until_idle(); }
  bool idle() const override { return engine_.idle(); }
  engine_stats stats() const override { return engine_.stats(); }
  const engine_config& config() const override { return engine_.config(); }
  void shutdown() override { engine_.shutdown(); }

 private:
  std::shared_ptr<const void> weights_owner_;  // declared first: outlives the scheduler and its runner
  scheduler engine_;
};

}  // namespace

std::unique_ptr<program_engine> make_program_engine(std::shared_ptr<const void> weights_owner,
                                                    std::unique_ptr<model_runner> runner,
                                                    std::shared_ptr<const tokenizer> tok, const engine_config& cfg,
                                                    model_info info, std::chrono::steady_clock::time_point t0) {
  return std::make_unique<scheduled_engine>(std::move(weights_owner), std::move(runner), std::move(tok), cfg,
                                            std::move(info), t0);
}

}  // namespace detail

std::unique_ptr<program_engine> open_engine(const engine_options& opts) {
  detail::startup st;
  st.t0 = std::chrono::steady_clock::now();
  {
    engine_config queue_only;  // the one limit that is not a size: checked before anything is planned
    queue_only.limits.max_seq_len = 1;
    queue_only.max_queue = opts.max_queue;
    queue_only.validate();
  }
  const std::filesystem::path path = opts.model.empty() ? default_model_path() : opts.model;
  auto file = model_file::open(path);
  const detail::test_models_hook& test_models = detail::test_models();
  const std::string_view name = test_models.identify ? test_models.identify(*file) : identify_model<all_models>(*file);
#if !defined(GF_PROGRAMS_HAVE_CUDA)
  if (opts.backend != "cpu")
    throw error(errc::invalid_argument, "backend '" + opts.backend + "' is not available in this build (available: cpu)");
#else
  if (opts.backend != "cpu" && opts.backend != "cuda")
    throw error(errc::invalid_argument, "unknown backend '" + opts.backend + "' (available: cpu, cuda)");
#endif
  if (opts.progress) file->prefault(true);
  std::shared_ptr<const tokenizer> tok;
  try {
    tok = std::make_shared<const tokenizer>(load_tokenizer(*file));
  } catch (const error& e) {
    if (file->gguf()) throw;  // a GGUF file must carry its vocabulary; HF directories may not
  }
  st.file_weight_bytes = detail::file_weight_bytes(*file, opts.backend == "cuda");
  st.weights = detail::file_weight_scheme(*file);
#if defined(GF_PROGRAMS_HAVE_CUDA)
  if (opts.backend == "cuda") {
    st.device = detail::cuda_device_info(0);
    if (auto e = detail::make_cuda_engine(file, name, tok, opts, st)) return e;
    if (test_models.make_cuda)
      if (auto e = test_models.make_cuda(file, name, tok, opts, st)) return e;
  } else
#endif
  {
    st.device = detail::host_device_info();
    // The families this build compiles (GEMMAFORGE_PROGRAM_MODELS may leave some out).
    constexpr detail::factory_fn factories[] = {
#if defined(GF_PROGRAMS_HAVE_GEMMA1)
        detail::make_gemma1_engine,
#endif
#if defined(GF_PROGRAMS_HAVE_GEMMA2)
        detail::make_gemma2_engine,
#endif
#if defined(GF_PROGRAMS_HAVE_GEMMA3)
        detail::make_gemma3_engine,
#endif
    };
    for (detail::factory_fn make : factories)
      if (auto e = make(file, name, tok, opts, st)) return e;
    if (test_models.make)
      if (auto e = test_models.make(file, name, tok, opts, st)) return e;
  }
  if (!std::string_view(GF_PROGRAM_MODELS).empty() && !detail::listed(GF_PROGRAM_MODELS, name))
    throw error(errc::invalid_argument, file->path() + ": " + std::string(name) + " is not built into this build of the programs (GEMMAFORGE_PROGRAM_MODELS=" +
                                            GF_PROGRAM_MODELS + ", as scripts/demo configures it): the full build (cmake -S . -B build) runs every model");
  throw error(errc::invalid_argument, file->path() + ": " + std::string(name) + " cannot be run (planning-only descriptor)");
}

}  // namespace gemmaforge::programs
