// The memory plan's verdicts: the seed's case (openchat-3.5-0106-gemma on an RTX 4090), the
// other models, vLLM's formula, config validation, the workspace layout and the what-if options.
// The static_asserts are the compile-time half: they fail the build, not the run.
#include <catch2/catch.hpp>

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/plan.hpp>

#include <string>

namespace gf = gemmaforge;
using namespace gf::models;
using gf::devices::rtx4090;

namespace {
constexpr gf::serving_config seed{.max_seq_len = 8192, .max_batch = 1, .weights = gf::weight_scheme::bf16,
                                  .kv = gf::dtype::bf16, .memory_permille = 900};
constexpr gf::serving_config seed_fp8 = [] { auto c = seed; c.kv = gf::dtype::fp8_e4m3; return c; }();
constexpr gf::serving_config seed_95 = [] { auto c = seed; c.memory_permille = 950; return c; }();
const gf::device_info rtx = gf::device_info_of<rtx4090>();
}  // namespace

// ---- compile time: the same plan as a type
using seed_plan = gf::memory_plan<openchat_3_5_0106_gemma, rtx4090, seed>;
static_assert(seed_plan::valid && seed_plan::fits);
static_assert(gf::require_fit<seed_plan>());
static_assert(seed_plan::kv_capacity_tokens >= 10'500);
static_assert(seed_plan::kv_capacity_tokens % 16 == 0);
static_assert(seed_plan::needed_tokens == 8192);
static_assert(seed_plan::budget_bytes == 24210 * gf::MiB * 9 / 10);
static_assert(seed_plan::layout.arena_bytes == seed_plan::arena_bytes);
static_assert(gf::memory_plan<openchat_3_5_0106_gemma, rtx4090, seed_fp8>::kv_capacity_tokens >= 21'000);
static_assert(gf::memory_plan<gemma_2_9b, rtx4090, seed>::fits);
static_assert(!gf::memory_plan<gemma_3_27b, rtx4090, seed>::fits);
static_assert(!gf::memory_plan<gemma_3_27b, rtx4090, seed>::weights_fit);
static_assert(gf::memory_plan<mistral_7b, rtx4090, seed>::fits);
static_assert(gf::memory_plan<gemma_3_270m, gf::devices::host<1 * gf::GiB>, gf::serving_config{.max_seq_len = 32768}>::fits);
static_assert(gf::memory_plan<openchat_3_5_0106_gemma, rtx4090, seed>::result.kv_capacity_tokens ==
              gf::make_plan<openchat_3_5_0106_gemma>(gf::device_info_of<rtx4090>(), seed).kv_capacity_tokens);
// vLLM's formula reproduces the seed: 5888 tokens at 0.90 (refused), enough for 8192 at 0.95.
static_assert(gf::vllm_formula<openchat_3_5_0106_gemma>(gf::device_info_of<rtx4090>(), seed).capacity_tokens == 5888);
static_assert(gf::vllm_formula<openchat_3_5_0106_gemma>(gf::device_info_of<rtx4090>(), seed_95).fits);

TEST_CASE("the seed's case: openchat-3.5-0106-gemma, bf16, 8192 tokens on an RTX 4090 at 0.90", "[cpu][plan]") {
  const gf::plan_result p = gf::make_plan<openchat_3_5_0106_gemma>(rtx, seed);
  REQUIRE(p.valid());
  CHECK(p.fits);
  CHECK(p.kv_capacity_tokens >= 10'500);
  CHECK(p.kv_bytes_per_token == 458'752);
  CHECK(p.kv_block_bytes == 7 * gf::MiB);
  CHECK(p.ring_bytes == 0);
  CHECK(p.reserve_bytes == 512 * gf::MiB);
  CHECK(p.headroom_bytes > 0);
  // The terms add up: budget = weights (as uploaded) + workspace + reserve + rings + capacity + slack
  // < one block. What is allocated is the layout: max_batch full sequences here (no kv_fill).
  const std::uint64_t weights_region = gf::round_up(p.layout.bytes("weights"), gf::arena_alignment);
  CHECK(weights_region >= p.weights_bytes);
  const std::uint64_t used = weights_region + p.workspace_bytes + p.reserve_bytes + p.ring_bytes + p.kv_capacity_blocks * p.kv_block_bytes;
  CHECK(used <= p.budget_bytes);
  CHECK(p.budget_bytes - used < p.kv_block_bytes + gf::arena_alignment);
  CHECK(p.kv_pool_bytes == p.needed_tokens * p.kv_bytes_per_token);
  CHECK(p.arena_bytes == weights_region + p.workspace_bytes + p.kv_pool_bytes);
  CHECK(p.arena_bytes + p.reserve_bytes <= p.budget_bytes);
  CHECK(gf::max_context<openchat_3_5_0106_gemma>(rtx, seed) == 8192);  // the model's limit

  const gf::plan_result fp8 = gf::make_plan<openchat_3_5_0106_gemma>(rtx, seed_fp8);
  CHECK(fp8.fits);
  CHECK(fp8.kv_capacity_tokens >= 21'000);
}

TEST_CASE("vLLM's formula gives the seed's 5888 tokens and accepts 8192 at 0.95", "[cpu][plan]") {
  const gf::vllm_estimate v = gf::vllm_formula<openchat_3_5_0106_gemma>(rtx, seed);
  CHECK(v.block_bytes == 7 * gf::MiB);
  CHECK(v.blocks == 368);
  CHECK(v.capacity_tokens == 5888);
  CHECK_FALSE(v.fits);
  CHECK(v.profile_tokens == 8192);
  const gf::vllm_estimate v95 = gf::vllm_formula<openchat_3_5_0106_gemma>(rtx, seed_95);
  CHECK(v95.fits);
  CHECK(v95.capacity_tokens >= 8192);
  // gemmaforge plans ~1.9x the tokens vLLM had for the same card and fraction.
  CHECK(gf::make_plan<openchat_3_5_0106_gemma>(rtx, seed).kv_capacity_tokens > 18 * v.capacity_tokens / 10);
}

TEST_CASE("gemma-2-9b bf16 fits 8192 tokens thanks to window-bounded KV", "[cpu][plan]") {
  const gf::plan_result p = gf::make_plan<gemma_2_9b>(rtx, seed);
  CHECK(p.fits);
  CHECK(p.global_layers == 21);
  CHECK(p.ring_blocks == 257);
  // Paying every layer for every token, as vLLM did, the same budget does not hold 8192 tokens.
  CHECK_FALSE(gf::vllm_formula<gemma_2_9b>(rtx, seed).fits);
  const std::uint64_t naive_kv = gf::kv_bytes_per_token_all_layers<gemma_2_9b>(gf::dtype::bf16) * 8192;
  const std::uint64_t bounded_kv = p.kv_bytes_per_token * 8192 + p.ring_bytes;
  CHECK(bounded_kv < naive_kv * 8 / 10);
}

TEST_CASE("gemma-3-27b bf16 does not fit a 24 GB card, q4_k_m weights do", "[cpu][plan]") {
  const gf::plan_result p = gf::make_plan<gemma_3_27b>(rtx, seed);
  CHECK_FALSE(p.fits);
  CHECK_FALSE(p.weights_fit);
  CHECK(p.kv_capacity_tokens == 0);
  CHECK(gf::max_context<gemma_3_27b>(rtx, seed) == 0);
  gf::serving_config q = seed;
  q.weights = gf::weight_scheme::q4_k_m;
  CHECK(gf::make_plan<gemma_3_27b>(rtx, q).fits);
}

TEST_CASE("mistral-7b, the seed's baseline, fits, all-local models count whole sequences", "[cpu][plan]") {
  const gf::plan_result p = gf::make_plan<mistral_7b>(rtx, seed);
  CHECK(p.fits);
  CHECK(p.global_layers == 0);
  CHECK(p.kv_bytes_per_token == 0);
  CHECK(p.ring_blocks == 257);
  CHECK(p.kv_capacity_tokens == p.max_sequences * 8192);
  CHECK(p.max_sequences >= 1);
  CHECK(gf::vllm_formula<mistral_7b>(rtx, seed).fits);  // vLLM ran it too
}

TEST_CASE("batch and memory fraction move the verdict the expected way", "[cpu][plan]") {
  gf::serving_config c = seed;
  c.max_batch = 2;
  const gf::plan_result two = gf::make_plan<openchat_3_5_0106_gemma>(rtx, c);
  CHECK_FALSE(two.fits);
  CHECK(two.needed_tokens == 16384);
  CHECK(two.headroom_bytes < 0);
  CHECK(gf::max_batch_that_fits<openchat_3_5_0106_gemma>(rtx, c) == 1);
  const std::uint32_t longest = gf::max_context<openchat_3_5_0106_gemma>(rtx, c);
  CHECK(longest % 16 == 0);
  c.max_seq_len = longest;
  CHECK(gf::make_plan<openchat_3_5_0106_gemma>(rtx, c).fits);
  c.max_seq_len = longest + 16;
  CHECK_FALSE(gf::make_plan<openchat_3_5_0106_gemma>(rtx, c).fits);

  std::uint64_t previous = 0;
  for (std::uint32_t permille = 700; permille <= 1000; permille += 50) {
    c = seed;
    c.memory_permille = permille;
    const std::uint64_t cap = gf::make_plan<openchat_3_5_0106_gemma>(rtx, c).kv_capacity_tokens;
    CHECK(cap >= previous);
    previous = cap;
  }
}

TEST_CASE("options for a plan that does not fit are ranked by what they buy", "[cpu][plan]") {
  gf::serving_config c = seed;
  c.max_batch = 2;
  const auto options = gf::suggest_options<openchat_3_5_0106_gemma>(rtx, c);
  REQUIRE(options.size() >= 5);
  bool seen_fp8 = false, seen_context = false;
  for (std::size_t i = 0; i < options.size(); ++i) {
    INFO(options[i].change);
    CHECK(options[i].plan.kv_capacity_tokens ==
          gf::make_plan<openchat_3_5_0106_gemma>(rtx, options[i].config).kv_capacity_tokens);
    if (i > 0 && options[i].plan.fits == options[i - 1].plan.fits)
      CHECK(options[i].plan.kv_capacity_tokens <= options[i - 1].plan.kv_capacity_tokens);
    if (i > 0) CHECK((options[i - 1].plan.fits || !options[i].plan.fits));
    seen_fp8 |= options[i].config.kv == gf::dtype::fp8_e4m3 && options[i].config.weights == gf::weight_scheme::bf16;
    seen_context |= options[i].config.max_seq_len < 8192;
  }
  CHECK(seen_fp8);
  CHECK(seen_context);
}

TEST_CASE("serving_config validation names the first problem", "[cpu][plan]") {
  using E = gf::config_error;
  auto with = [](auto edit) { gf::serving_config c{}; edit(c); return gf::check(c); };
  CHECK(gf::check(gf::serving_config{}) == E::none);
  CHECK(gf::validate(gf::serving_config{}).empty());
  CHECK(with([](auto& c) { c.max_seq_len = 0; }) == E::zero_max_seq_len);
  CHECK(with([](auto& c) { c.max_seq_len = gf::max_supported_seq_len + 1; }) == E::max_seq_len_too_large);
  CHECK(with([](auto& c) { c.max_batch = 0; }) == E::zero_max_batch);
  CHECK(with([](auto& c) { c.max_batch = gf::max_supported_batch + 1; }) == E::max_batch_too_large);
  CHECK(with([](auto& c) { c.memory_permille = 0; }) == E::zero_memory_fraction);
  CHECK(with([](auto& c) { c.memory_permille = 1001; }) == E::memory_fraction_above_one);
  CHECK(with([](auto& c) { c.memory_permille = 1000; }) == E::none);
  CHECK(with([](auto& c) { c.prefill_chunk = 0; }) == E::zero_prefill_chunk);
  CHECK(with([](auto& c) { c.block_tokens = 0; }) == E::block_tokens_not_power_of_two);
  CHECK(with([](auto& c) { c.block_tokens = 24; }) == E::block_tokens_not_power_of_two);
  CHECK(with([](auto& c) { c.block_tokens = 2048; }) == E::block_tokens_too_large);
  CHECK(with([](auto& c) { c.block_tokens = 1; }) == E::none);
  CHECK(gf::validate(gf::serving_config{.block_tokens = 24}) == "block_tokens must be a power of two");
  // The bad-input matrix's config rows (docs/reliability.md), with their messages.
  CHECK(gf::validate(gf::serving_config{.max_seq_len = 0}) == "max_seq_len must be at least 1");
  CHECK(gf::validate(gf::serving_config{.max_batch = 0}) == "max_batch must be at least 1");
  CHECK(gf::validate(gf::serving_config{.memory_permille = 0}) == "memory fraction must be greater than 0");
  CHECK(gf::validate(gf::serving_config{.memory_permille = 1001}) == "memory fraction must be at most 1");

  gf::serving_config c{};
  c.max_seq_len = 16384;
  CHECK(gf::check_for<openchat_3_5_0106_gemma>(c) == E::max_seq_len_exceeds_model);
  CHECK(gf::check_for<gemma_3_270m>(c) == E::none);
  const gf::plan_result p = gf::make_plan<openchat_3_5_0106_gemma>(rtx, c);
  CHECK_FALSE(p.valid());
  CHECK_FALSE(p.fits);
  CHECK(p.error == "max_seq_len exceeds the model's context length");
}

TEST_CASE("arena layout: quantized weights plan the CUDA executor's 15-bit activations", "[cpu][plan]") {
  const std::uint64_t t = 512 + 1;
  gf::serving_config c = seed;
  c.weights = gf::weight_scheme::q4_k_m;
  const gf::plan_result g = gf::make_plan<openchat_3_5_0106_gemma>(rtx, c);
  // Two int8 digit planes of [T][widest input] + per-32 scales and sums (cuda_executor's default).
  CHECK(g.layout.bytes("cuda_act_quant") == gf::cuda::act_quant_bytes(int(t), 24576, 2));
  CHECK(gf::cuda::act_quant_bytes(int(t), 24576, 2) - gf::cuda::act_quant_bytes(int(t), 24576, 1) == t * 24576);
  CHECK(gf::cuda::act_quant_bytes(int(t), 24576, 0) == 0);
}

TEST_CASE("arena layout: named regions with the sizes the runtime carves", "[cpu][plan]") {
  const std::uint64_t t = 512 + 1;
  const gf::plan_result g = gf::make_plan<openchat_3_5_0106_gemma>(rtx, seed);
  const gf::arena_layout& w = g.layout;
  CHECK(w.step_tokens == t);
  CHECK(w.bytes("x") == t * 3072 * 4);
  CHECK(w.bytes("q") == t * 4096 * 4);
  CHECK(w.bytes("k") == t * 4096 * 4);
  CHECK(w.bytes("gate") == t * 24576 * 4);
  CHECK(w.bytes("logits") == 256000ull * 4);
  CHECK(w.bytes("sampler") == 256000ull * 8);
  CHECK(w.bytes("cuda_attn_partials") == 2ull * 16 * 32 * (256 + 2) * 4);  // (batch + 1) x heads x 32 splits
  CHECK(w.find("cuda_act_quant") == nullptr);  // bf16 weights: no activation is quantized
  CHECK(w.bytes("kv_global") == 8192ull * 458'752);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < w.count; ++i) {
    const gf::arena_region& b = w.regions[i];
    INFO(b.name);
    CHECK(b.offset % gf::arena_alignment == 0);
    if (b.space != gf::memory_space::arena) continue;
    CHECK(b.offset == sum);
    sum += gf::round_up(b.bytes, gf::arena_alignment);
  }
  CHECK(sum == w.arena_bytes);
  // A prefill chunk longer than a sequence is never needed.
  const gf::plan_result tiny = gf::make_plan<tiny_gemma3>(gf::device_info_of<gf::devices::host_default>(), gf::serving_config{.max_seq_len = 64});
  CHECK(tiny.layout.step_tokens == 64 + 1);
}

TEST_CASE("devices: CUDA-visible memory, reserve, lookup by name", "[cpu][plan]") {
  const auto d = gf::find_device("rtx4090");
  REQUIRE(d.has_value());
  CHECK(d->memory_bytes == 24210 * gf::MiB);
  CHECK(d->nvidia_smi_bytes == 24564 * gf::MiB);
  CHECK(d->sm_arch == 89);
  CHECK(d->bandwidth_gbps == 1008);
  CHECK(d->bf16_tflops == Approx(165.2));
  CHECK(gf::find_device("h100-80g")->bandwidth_gbps == 3350);
  CHECK(gf::find_device("h100-80g")->bf16_tflops == 989);
  CHECK_FALSE(gf::find_device("rtx9090").has_value());
  for (const gf::device_info& x : gf::all_devices) {
    INFO(x.name);
    CHECK(x.memory_bytes <= x.nvidia_smi_bytes);
    CHECK((x.kind == gf::device_kind::host) == (x.reserve_bytes() == 0));
  }
  CHECK(gf::device_info_of<gf::devices::host<64 * gf::GiB>>().memory_bytes == 64 * gf::GiB);
  const gf::plan_result h = gf::make_plan<gemma_3_270m>(gf::device_info_of<gf::devices::host_default>(), seed);
  CHECK(h.reserve_bytes == 0);
  CHECK(h.fits);
}
