// gemmaforge-plan: does a model fit a device under a serving config, and with how many tokens of
// KV cache? Prints the memory plan's terms, the verdict, what to change when it does not fit,
// and what vLLM's (2024) formula gives for the same case. Same constexpr planner the engine
// checks at compile time (include/gemmaforge/plan/).
//
//   gemmaforge-plan --model openchat-3.5-0106-gemma --device rtx4090 --max-seq-len 8192
//   gemmaforge-plan --model gemma-3-27b --device rtx4090 --weights q4_k_m --kv fp8 --json
//   gemmaforge-plan --list
//
// Exit status: 0 the plan fits, 1 it does not, 2 bad input (one line on stderr).
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/plan.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace gf = gemmaforge;

namespace {

constexpr int exit_fits = 0;
constexpr int exit_does_not_fit = 1;
constexpr int exit_bad_input = 2;

struct bad_input {
  std::string message;
};

[[noreturn]] void fail(const std::string& message) { throw bad_input{message}; }

// Whole-string unsigned parse: CLI11 alone would accept "-1" for an unsigned on some versions
// and we want one consistent message for every numeric flag.
std::uint32_t parse_count(const std::string& flag, const std::string& text, std::uint32_t max, bool zero_ok = false) {
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc{} || ptr != end) fail(fmt::format("{} expects a positive integer, got '{}'", flag, text));
  if (v == 0 && !zero_ok) fail(fmt::format("{} must be at least 1", flag));
  if (v > max) fail(fmt::format("{} must be at most {}, got {}", flag, max, v));
  return std::uint32_t(v);
}

std::uint32_t parse_fraction(const std::string& text) {
  char* end = nullptr;
  const double f = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(f))
    fail(fmt::format("--memory-fraction expects a number in (0, 1], got '{}'", text));
  if (f <= 0.0 || f > 1.0) fail(fmt::format("--memory-fraction must be in (0, 1], got {}", text));
  const long permille = std::lround(f * 1000.0);
  if (permille < 1) fail(fmt::format("--memory-fraction {} is below the planner's resolution (0.001)", text));
  return std::uint32_t(permille);
}

std::string mib(std::uint64_t bytes) { return fmt::format("{:.1f}", gf::to_mib(bytes)); }
std::string mib(std::int64_t bytes) {
  return fmt::format("{}{:.1f}", bytes < 0 ? "-" : "", gf::to_mib(std::uint64_t(bytes < 0 ? -bytes : bytes)));
}
// 0.90, 0.95, 0.997: two decimals unless the permille needs three.
std::string fraction(std::uint32_t permille) {
  return permille % 10 == 0 ? fmt::format("{:.2f}", permille / 1000.0) : fmt::format("{:.3f}", permille / 1000.0);
}
std::string kib(std::uint64_t bytes) { return fmt::format("{:.1f} KiB", double(bytes) / double(gf::KiB)); }

nlohmann::ordered_json config_json(const gf::serving_config& c) {
  return {{"max_seq_len", c.max_seq_len},
          {"max_batch", c.max_batch},
          {"weights", std::string(gf::to_string(c.weights))},
          {"kv", std::string(gf::to_string(c.kv))},
          {"memory_fraction", c.memory_permille / 1000.0},
          {"memory_permille", c.memory_permille},
          {"prefill_chunk", c.prefill_chunk},
          {"block_tokens", c.block_tokens}};
}

nlohmann::ordered_json vllm_json(const gf::vllm_estimate& v) {
  return {{"total_bytes", v.total_bytes},         {"budget_bytes", v.budget_bytes},
          {"weights_bytes", v.weights_bytes},     {"profile_tokens", v.profile_tokens},
          {"activation_bytes", v.activation_bytes}, {"sampler_bytes", v.sampler_bytes},
          {"overhead_bytes", v.overhead_bytes},   {"overhead_calibrated", true},
          {"peak_bytes", v.peak_bytes},           {"kv_bytes_per_token", v.kv_bytes_per_token},
          {"block_bytes", v.block_bytes},         {"blocks", v.blocks},
          {"capacity_tokens", v.capacity_tokens}, {"fits", v.fits}};
}

struct report_input {
  gf::device_info device;
  gf::serving_config config;
  bool json = false;
  bool regions = false;
};

template <class Model>
int report(const report_input& in) {
  const gf::device_info& d = in.device;
  const gf::serving_config& c = in.config;
  if (const std::string_view e = gf::validate_for<Model>(c); !e.empty()) {
    if (c.max_seq_len > std::uint32_t(Model::max_positions))
      fail(fmt::format("{} (--max-seq-len {} > {} for {})", e, c.max_seq_len, Model::max_positions, Model::name));
    fail(std::string(e));
  }
  const gf::plan_result p = gf::make_plan<Model>(d, c);
  const gf::vllm_estimate v = gf::vllm_formula<Model>(d, c);
  const std::uint32_t longest = gf::max_context<Model>(d, c);
  const auto options = p.fits ? std::vector<gf::plan_option>{} : gf::suggest_options<Model>(d, c);

  if (in.json) {
    nlohmann::ordered_json j;
    j["model"] = std::string(Model::name);
    j["device"] = std::string(d.name);
    j["fits"] = p.fits;
    j["weights_fit"] = p.weights_fit;
    j["kv_capacity_tokens"] = p.kv_capacity_tokens;
    j["kv_capacity_blocks"] = p.kv_capacity_blocks;
    j["needed_tokens"] = p.needed_tokens;
    j["max_context_tokens"] = longest;
    j["model_max_positions"] = Model::max_positions;
    j["max_sequences"] = p.max_sequences;
    j["device_memory_bytes"] = p.device_memory_bytes;
    j["nvidia_smi_bytes"] = d.nvidia_smi_bytes;
    j["budget_bytes"] = p.budget_bytes;
    j["weights_bytes"] = p.weights_bytes;
    j["workspace_bytes"] = p.workspace_bytes;
    j["arena_bytes_allocated"] = p.arena_bytes;
    j["host_staging_bytes"] = p.host_staging_bytes;
    nlohmann::ordered_json regions = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < p.layout.count; ++i) {
      const gf::arena_region& r = p.layout.regions[i];
      regions.push_back({{"name", std::string(r.name)},
                         {"space", r.space == gf::memory_space::arena ? "arena" : "host"},
                         {"bytes", r.bytes},
                         {"offset", r.offset}});
    }
    j["regions"] = regions;
    j["reserve_bytes"] = p.reserve_bytes;
    j["kv_bytes_per_token"] = p.kv_bytes_per_token;
    j["kv_block_bytes"] = p.kv_block_bytes;
    j["global_layers"] = p.global_layers;
    j["local_layers"] = p.local_layers;
    j["local_kv_bytes_per_token"] = p.local_kv_bytes_per_token;
    j["ring_blocks"] = p.ring_blocks;
    j["ring_bytes"] = p.ring_bytes;
    j["kv_pool_bytes"] = p.kv_pool_bytes;
    j["arena_bytes"] = p.arena_bytes;
    j["headroom_bytes"] = p.headroom_bytes;
    j["config"] = config_json(c);
    j["prefix_snapshot_bytes"] = p.prefix_snapshot_bytes;
    j["kv_allocated_tokens"] = p.kv_allocated_tokens;
    j["vllm_capacity_tokens"] = v.capacity_tokens;
    j["vllm_fits"] = v.fits;
    j["vllm"] = vllm_json(v);
    nlohmann::ordered_json oj = nlohmann::ordered_json::array();
    for (const gf::plan_option& o : options)
      oj.push_back({{"change", o.change},
                    {"config", config_json(o.config)},
                    {"fits", o.plan.fits},
                    {"kv_capacity_tokens", o.plan.kv_capacity_tokens},
                    {"needed_tokens", o.plan.needed_tokens}});
    j["options"] = oj;
    std::puts(j.dump(2).c_str());
    return p.fits ? exit_fits : exit_does_not_fit;
  }

  fmt::print("gemmaforge plan: {} on {} ({})\n", Model::name, d.name, d.description);
  fmt::print("  max_seq_len {}, max_batch {}, weights {}, KV {}, memory fraction {}, prefill chunk {}, block {} tokens\n\n",
             c.max_seq_len, c.max_batch, gf::to_string(c.weights), gf::to_string(c.kv), fraction(c.memory_permille),
             c.prefill_chunk, c.block_tokens);
  const auto row = [](const std::string& term, const std::string& value, std::uint64_t bytes) {
    fmt::print("  {:<58} {:>10} MiB {:>15}\n", term, value, bytes);
  };
  row(fmt::format("device memory (as CUDA reports it; nvidia-smi {:.0f} MiB)", gf::to_mib(d.nvidia_smi_bytes)),
      mib(p.device_memory_bytes), p.device_memory_bytes);
  row(fmt::format("budget = memory x {}", fraction(c.memory_permille)), mib(p.budget_bytes), p.budget_bytes);
  row(fmt::format("- weights ({}{})", gf::to_string(c.weights),
                  Model::tied_embedding ? ", tied embedding counted once" : ", untied head"),
      mib(p.weights_bytes), p.weights_bytes);
  row(fmt::format("- workspace ({}-token step, {} logits rows)", p.layout.step_tokens, p.layout.logits_rows),
      mib(p.workspace_bytes), p.workspace_bytes);
  row(d.kind == gf::device_kind::cuda
          ? fmt::format("- reserve (CUDA context {} + cuBLAS {} MiB)", mib(d.context_reserve_bytes), mib(d.blas_workspace_bytes))
          : std::string("- reserve (none on the host)"),
      mib(p.reserve_bytes), p.reserve_bytes);
  row(fmt::format("- local-layer rings ({} seq x {} layers x {} blocks)", c.max_batch, p.local_layers, p.ring_blocks),
      mib(p.ring_bytes), p.ring_bytes);
  if (c.prefix_slots > 0)
    row(fmt::format("- prefix-cache ring snapshots ({} slots)", c.prefix_slots), mib(p.prefix_snapshot_bytes),
        p.prefix_snapshot_bytes);
  fmt::print("  {:<58} {:>10} MiB {:>15}\n", "= left for the global-layer KV pool", mib(p.pool_bytes_available),
             p.pool_bytes_available);
  const char* scale_note = gf::kv_dtype_has_scale(c.kv) ? " + f32 scale per token and head" : "";
  if (p.global_layers > 0)
    fmt::print("\n  KV per token: {} ({} global layers x K+V, {}{})\n", kib(p.kv_bytes_per_token), p.global_layers,
               gf::to_string(c.kv), scale_note);
  else
    fmt::print("\n  KV per token: {} in the {} windowed layers ({}{}), held only for the last {} positions\n",
               kib(p.local_kv_bytes_per_token), p.local_layers, gf::to_string(c.kv), scale_note, Model::window);
  if (p.kv_block_bytes > 0) {
    fmt::print("  capacity: {} blocks x {} tokens = {} tokens; needed {} ({} x {})\n", p.kv_capacity_blocks,
               c.block_tokens, p.kv_capacity_tokens, p.needed_tokens, c.max_batch, c.max_seq_len);
  } else {
    fmt::print("  no global layers: each sequence costs its rings only; {} full-length sequences fit = {} tokens; needed {}\n",
               p.max_sequences, p.kv_capacity_tokens, p.needed_tokens);
  }
  fmt::print("  headroom: {} MiB\n", mib(p.headroom_bytes));
  fmt::print("  allocated: {} blocks = {} tokens of KV{}\n\n", p.kv_allocated_blocks, p.kv_allocated_tokens,
             c.kv_fill ? " (every block the budget holds)" : "");
  if (in.regions) {
    fmt::print("arena layout (what the engine carves, in this order):\n");
    for (std::size_t i = 0; i < p.layout.count; ++i) {
      const gf::arena_region& r = p.layout.regions[i];
      fmt::print("  {:<26} {:<6} {:>12} MiB {:>15} at {}\n", r.name, r.space == gf::memory_space::arena ? "arena" : "host",
                 mib(r.bytes), r.bytes, r.offset);
    }
    fmt::print("  = arena {} bytes, host staging {} bytes\n\n", p.arena_bytes, p.host_staging_bytes);
  }

  const std::string longest_text =
      longest == 0 ? std::string("none")
                   : fmt::format("{}{}", longest,
                                 longest == std::uint32_t(Model::max_positions) ? " (the model's limit)" : "");
  if (p.fits) {
    fmt::print("verdict: FITS: {} tokens of KV >= {} needed; longest context at batch {}: {}\n", p.kv_capacity_tokens,
               p.needed_tokens, c.max_batch, longest_text);
  } else if (!p.weights_fit) {
    fmt::print("verdict: DOES NOT FIT: the weights ({} MiB) exceed the budget ({} MiB)\n", mib(p.weights_bytes),
               mib(p.budget_bytes));
  } else {
    fmt::print("verdict: DOES NOT FIT: {} tokens of KV < {} needed; longest context at batch {}: {}\n",
               p.kv_capacity_tokens, p.needed_tokens, c.max_batch, longest_text);
  }
  if (!options.empty()) {
    fmt::print("\noptions, ranked by the KV capacity they reach:\n");
    for (const gf::plan_option& o : options)
      fmt::print("  {:<48} {:>10} tokens  {}\n", o.change, o.plan.kv_capacity_tokens,
                 o.plan.fits ? "fits" : (o.plan.weights_fit ? "does not fit" : "weights exceed budget"));
  }

  fmt::print("\nvLLM (2024 formula) for the same case: blocks = (memory x utilization - profiled peak) // block\n");
  fmt::print("  peak = weights {} + dummy prefill of {} tokens {} + sampler 256 x {} {} + context/allocator {}\n",
             mib(v.weights_bytes), v.profile_tokens, mib(v.activation_bytes), Model::vocab, mib(v.sampler_bytes),
             mib(v.overhead_bytes));
  fmt::print("       = {} MiB (the last term calibrated so the seed's case gives its 5888 tokens)\n", mib(v.peak_bytes));
  fmt::print("  blocks = ({} x {} - {}) // {} MiB = {} -> {} tokens: vLLM {} max_seq_len {}\n", mib(v.total_bytes),
             fraction(c.memory_permille), mib(v.peak_bytes), fmt::format("{:.2f}", gf::to_mib(v.block_bytes)), v.blocks,
             v.capacity_tokens, v.fits ? "accepts" : "refuses", c.max_seq_len);
  return p.fits ? exit_fits : exit_does_not_fit;
}

void list_all() {
  fmt::print("models (--model):\n");
  gf::for_each_type(gf::all_models{}, [](auto tag) {
    using M = typename decltype(tag)::type;
    fmt::print("  {:<26} {:>7.3f}B params, {} layers ({} global), context {}{}\n", M::name, double(M::param_count) / 1e9,
               M::n_layers, M::layers::global_layers(), M::max_positions,
               M::runnable ? "" : "  (planning baseline, not runnable)");
  });
  fmt::print("devices (--device):\n");
  for (const gf::device_info& d : gf::all_devices)
    fmt::print("  {:<10} {:<32} {:>8.0f} MiB as CUDA reports it, {:>6.0f} GB/s\n", d.name, d.description,
               gf::to_mib(d.memory_bytes), d.bandwidth_gbps);
  fmt::print("weights (--weights): f32 bf16 f16 q8_0 q4_k_m\nKV (--kv): bf16 f16 fp8 int8 f32\n");
}

int run(int argc, char** argv) {
  CLI::App app{"gemmaforge-plan: plan a model's memory on a device (exit 0 fits, 1 does not fit, 2 bad input)"};
  std::string model, device, max_seq_len, batch = "1", weights = "bf16", kv = "bf16", fraction_text = "0.90",
                                                prefill = "512", block = "16", prefix_slots = "0";
  bool json = false, list = false, regions = false, fill = false;
  // Repeated options: the last one wins, so a script can append an override to a base command.
  app.add_option("--model", model, "model name (see --list)")->take_last();
  app.add_option("--device", device, "device name (see --list)")->take_last();
  app.add_option("--max-seq-len", max_seq_len, "longest sequence in tokens (default: 8192, or the model's limit)")->take_last();
  app.add_option("--batch", batch, "sequences served together (default 1)")->take_last();
  app.add_option("--weights", weights, "weight storage: f32 bf16 f16 q8_0 q4_k_m (default bf16)")->take_last();
  app.add_option("--kv", kv, "KV cache dtype: bf16 f16 fp8 int8 f32 (default bf16)")->take_last();
  app.add_option("--memory-fraction", fraction_text, "fraction of device memory to use, in (0, 1] (default 0.90)")->take_last();
  app.add_option("--prefill-chunk", prefill, "prompt tokens per step (default 512)")->take_last();
  app.add_option("--block-tokens", block, "tokens per KV block, a power of two (default 16)")->take_last();
  app.add_option("--prefix-slots", prefix_slots, "prefix-cache entries, each with a snapshot of a sequence's rings (default 0)")
      ->take_last();
  app.add_flag("--fill", fill, "allocate every KV block the budget holds (what a GPU deployment does)");
  app.add_flag("--regions", regions, "print the arena layout: every region the engine carves");
  app.add_flag("--json", json, "print one JSON object");
  app.add_flag("--list", list, "list models and devices");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fail(e.what());
  }
  if (list) {
    list_all();
    return 0;
  }
  if (model.empty()) fail("--model is required (see --list)");
  if (device.empty()) fail("--device is required (see --list)");
  const std::optional<gf::device_info> dev = gf::find_device(device);
  if (!dev) fail(fmt::format("unknown device '{}' (see --list)", device));

  report_input in{*dev, {}, json, regions};
  gf::serving_config& c = in.config;
  c.max_batch = parse_count("--batch", batch, gf::max_supported_batch);
  if (!gf::parse_weight_scheme(weights, c.weights)) fail(fmt::format("unknown weight scheme '{}'", weights));
  if (!gf::parse_dtype(kv, c.kv)) fail(fmt::format("unknown KV dtype '{}'", kv));
  c.memory_permille = parse_fraction(fraction_text);
  c.prefill_chunk = parse_count("--prefill-chunk", prefill, gf::max_supported_seq_len);
  c.block_tokens = parse_count("--block-tokens", block, gf::max_block_tokens);
  c.prefix_slots = parse_count("--prefix-slots", prefix_slots, gf::max_supported_batch, true);
  c.kv_fill = fill;
  if (const std::string_view e = gf::validate(gf::serving_config{.block_tokens = c.block_tokens}); !e.empty())
    fail(std::string(e));

  int status = exit_bad_input;
  const bool found = gf::dispatch_model(model, [&](auto tag) {
    using M = typename decltype(tag)::type;
    c.max_seq_len = max_seq_len.empty() ? std::min<std::uint32_t>(8192, M::max_positions)
                                        : parse_count("--max-seq-len", max_seq_len, gf::max_supported_seq_len);
    status = report<M>(in);
  });
  if (!found) fail(fmt::format("unknown model '{}' (see --list)", model));
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const bad_input& e) {
    std::fprintf(stderr, "gemmaforge-plan: error: %s\n", e.message.c_str());
    return exit_bad_input;
  }
}
