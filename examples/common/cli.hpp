#pragma once
// Command-line conventions shared by the programs: the engine and sampling flags (llama.cpp
// names where they exist), and one error policy: a bad flag or value prints one line on stderr and
// exits with status 2; --help exits 0.
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/runtime/sampling_params.hpp>

#include "program_engine.hpp"

namespace gemmaforge::programs {

inline constexpr int exit_usage = 2;

inline void add_engine_flags(CLI::App& app, engine_options& o, std::string& kv) {
  app.add_option("-m,--model", o.model, "GGUF file or HF checkpoint directory (default: the model installed by scripts/setup)");
  app.add_option("-t,--threads", o.threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option_function<std::uint32_t>(
         "-c,--ctx-size", [&o](std::uint32_t n) { if (n == 0) o.fit = true; else o.limits.max_seq_len = n; },
         "context size in tokens (default: min(model context, 8192); 0: the largest that fits, as --fit)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--fit", o.fit, "use the largest context that fits the memory found at start-up (printed)");
  app.add_option("--prefill-chunk", o.limits.prefill_chunk, "prompt tokens per step (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--kv-blocks", o.limits.kv_blocks, "KV pool blocks (default: max_batch full sequences; a GPU: all its budget holds)")
      ->check(CLI::NonNegativeNumber);
  app.add_option_function<std::uint32_t>(
         "--memory-fraction-permille", [&o](std::uint32_t p) { o.limits.memory_permille = p; },
         "share of the available memory the plan may use, x1000 (default 900)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--kv", kv, "KV cache type: bf16, f16, fp8, int8, f32")->check(CLI::IsMember({"bf16", "f16", "fp8", "int8", "f32"}));
  app.add_option("--backend", o.backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--matmul", o.matmul, "CPU matmuls of quantized weights: int16 (default), int8 (fastest), exact (f32), int16-block-sums (CPU-only: one float step per 32-value block, the packed GEMM's order), int8-block-sums (CPU-only: the same order with int8's 8-bit activations, the fastest prefill)")
      ->check(CLI::IsMember({"int16", "int8", "exact", "int16-block-sums", "int8-block-sums"}));
  app.add_flag_callback("--exact-matmul", [&o] { o.matmul = "exact"; }, "same as --matmul exact");
}

inline void finish_engine_flags(engine_options& o, const std::string& kv) {
  if (!kv.empty() && !parse_dtype(kv, o.limits.kv)) throw error(errc::invalid_argument, "--kv: unknown type " + kv);
}

struct sampling_flags {
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f, frequency = 0.0f, presence = 0.0f;
  int top_k = 40, repeat_last_n = 64;
  std::int64_t seed = -1;

  void add(CLI::App& app) {
    app.add_option("--temp", temp, "temperature (0 = greedy)");
    app.add_option("--top-k", top_k, "top-k (0 = off)");
    app.add_option("--top-p", top_p, "top-p (1 = off)");
    app.add_option("--min-p", min_p, "min-p (0 = off)");
    app.add_option("--repeat-penalty", repeat_penalty, "repetition penalty (1 = off)");
    app.add_option("--repeat-last-n", repeat_last_n, "tokens the penalties look back over");
    app.add_option("--frequency-penalty", frequency, "OpenAI frequency penalty");
    app.add_option("--presence-penalty", presence, "OpenAI presence penalty");
    app.add_option("-s,--seed", seed, "RNG seed (-1 = random)");
  }
  sampling_params params() const {
    sampling_params p;
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repetition_penalty = repeat_penalty;
    p.frequency_penalty = frequency;
    p.presence_penalty = presence;
    p.penalty_last_n = repeat_last_n;
    p.seed = seed < 0 ? std::random_device{}() : std::uint64_t(seed);
    validate(p);
    return p;
  }
};

// Parse argv; returns -1 to continue, else the exit status to return from main.
inline int parse_cli(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", app.get_name().c_str(), e.what());
    return exit_usage;
  }
}

}  // namespace gemmaforge::programs
