// open_engine(): open the file once, identify the descriptor, load the tokenizer, and hand the
// file to the factory of the descriptor's family.
#include "program_engine.hpp"

#include <cstdlib>

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

std::vector<std::int32_t> program_engine::encode(std::string_view text, bool add_bos) const {
  const auto ids = tok().encode(text, {.add_bos = add_bos});
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

engine_config make_engine_config(const engine_options& o, int model_max_positions, const std::vector<std::int32_t>& stop_ids) {
  engine_config c;
  if (o.ctx_size < 0) throw error(errc::invalid_argument, "--ctx-size must be >= 0");
  if (o.max_batch <= 0) throw error(errc::invalid_argument, "--max-batch must be >= 1");
  if (o.ctx_size > model_max_positions)
    throw error(errc::invalid_argument, "--ctx-size " + std::to_string(o.ctx_size) + " exceeds the model's " +
                                            std::to_string(model_max_positions) + " positions");
  c.max_seq_len = o.ctx_size > 0 ? o.ctx_size : std::min(model_max_positions, 8192);
  c.max_batch = o.max_batch;
  c.prefill_chunk = std::min(o.prefill_chunk, c.max_seq_len);
  c.kv_blocks = o.kv_blocks;
  c.prefix_slots = o.prefix_slots;
  c.max_queue = o.max_queue;
  c.logits_rows = o.logits_rows;
  c.threaded = o.threaded;
  c.stop_ids = stop_ids;
  return c;
}

}  // namespace detail

std::unique_ptr<program_engine> open_engine(const engine_options& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::filesystem::path path = opts.model.empty() ? default_model_path() : opts.model;
  auto file = model_file::open(path);
  const std::string_view name = identify_model<all_models>(*file);
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
#if defined(GF_PROGRAMS_HAVE_CUDA)
  if (opts.backend == "cuda") {
    if (auto e = detail::make_cuda_engine(file, name, tok, opts, t0)) return e;
  } else
#endif
  {
    for (detail::factory_fn make : {detail::make_gemma1_engine, detail::make_gemma2_engine, detail::make_gemma3_engine,
                                    detail::make_tiny_engine})
      if (auto e = make(file, name, tok, opts, t0)) return e;
  }
  throw error(errc::invalid_argument, file->path() + ": " + std::string(name) + " cannot be run (planning-only descriptor)");
}

}  // namespace gemmaforge::programs
