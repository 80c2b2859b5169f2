// The engine end to end on the CUDA executor, on random tiny Gemma 1/2/3 models:
//   * greedy tokens equal the naive executor's (an independent plain-loop implementation);
//   * logits of every prompt position agree with the naive executor's within 1e-3 (relative to the
//     row's largest magnitude): naive accumulates matmuls in double and uses tanh/pow/cos in f32,
//     the executor follows math/ (f32, canonical order), so they differ by rounding only;
//   * batch invariance and chunking: a request's logits are bit-identical whether it runs alone or
//     beside others, whatever the prefill chunk, with split-K or single-pass attention, with or
//     without decode graphs, and with the cuBLASLt prefill only where that path is not used;
//   * KV dtypes bf16 / fp8 / int8 against the naive executor with the same KV codec;
//   * arena errors name the numbers.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cuda/executor.cuh>
#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/runtime/engine.hpp>

#include "cuda/cuda_test_util.cuh"
#include "support/naive_executor.hpp"
#include "support/random_model.hpp"
#include "support/requests.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using gf::testing::naive_executor;
using gf::testing::greedy;
using gf::testing::random_prompt;

namespace {

template <class Model, class Kv>
gc::cuda_executor make_executor(const gf::model_weights<Model>& w, const gf::engine_config& c,
                                gc::cuda_executor_config x = {}) {
  gc::cuda_executor_config cfg;
  cfg.quant_precision = x.quant_precision;
  cfg.gemm = x.gemm;
  cfg.attention = x.attention;
  cfg.attn_split_tokens = x.attn_split_tokens > 0 ? x.attn_split_tokens : 32;  // several splits even at 64 tokens
  cfg.decode_graphs = x.decode_graphs;
  // The planned layout of this engine: what the executor's one cudaMalloc holds.
  gf::serving_config limits = c.limits;
  limits.kv = gf::dtype_of<Kv>::value;
  cfg.arena_bytes = gc::cuda_executor::planned_arena_bytes(cfg, limits, w);
  return gc::cuda_executor(cfg);
}

struct run_result {
  std::vector<std::vector<std::int32_t>> tokens;
  std::vector<std::vector<float>> prompt_logits;  // request 0's prompt rows
};

// Runs the prompts through an engine (all submitted at once), request 0 scoring its prompt.
template <class Model, class Kv, class Exec>
run_result run_engine(const gf::model_weights<Model>& w, const gf::engine_config& c, Exec exec,
                      const std::vector<std::vector<std::int32_t>>& prompts, int max_tokens) {
  gf::basic_engine<Model, Exec, Kv> eng(w, c, std::move(exec));
  run_result out;
  std::vector<gf::request_handle> hs;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto r = greedy(prompts[i], max_tokens);
    if (i == 0)
      r.on_prompt_logits = [&](std::int32_t, const float* l) { out.prompt_logits.emplace_back(l, l + Model::vocab); };
    hs.push_back(eng.submit(std::move(r)));
  }
  eng.run_until_idle();
  for (auto& h : hs) {
    INFO(h->error_message());
    REQUIRE(h->reason() == gf::finish_reason::length);
    out.tokens.push_back(h->output_tokens());
  }
  CHECK(eng.pool().free_blocks() + eng.pool().cached_only_blocks() == eng.pool().total_blocks());
  return out;
}

void check_close(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b, float rel) {
  REQUIRE(a.size() == b.size());
  for (std::size_t r = 0; r < a.size(); ++r) {
    float scale = 0.0f;
    for (float x : b[r]) scale = std::max(scale, std::fabs(x));
    float worst = 0.0f;
    for (std::size_t i = 0; i < a[r].size(); ++i) worst = std::max(worst, std::fabs(a[r][i] - b[r][i]));
    INFO("row " << r << ": max |diff| " << worst << " vs row scale " << scale);
    CHECK(worst <= rel * scale);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("cuda engine: greedy tokens and prompt logits match the naive executor", "[cuda][engine]",
                   gf::models::tiny_gemma1, gf::models::tiny_gemma2, gf::models::tiny_gemma3) {
  using M = TestType;
  gf::testing::random_model<M> m(7);
  std::mt19937 rng(3);
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 5; ++i) prompts.push_back(random_prompt(rng, 6 + 5 * i));
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 3, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 0, .logits_rows = 8}};
  const auto ref = run_engine<M, float>(m.w, c, naive_executor{}, prompts, 10);
  const auto got = run_engine<M, float>(m.w, c, make_executor<M, float>(m.w, c), prompts, 10);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    INFO("request " << i);
    CHECK(got.tokens[i] == ref.tokens[i]);
  }
  check_close(got.prompt_logits, ref.prompt_logits, 1e-3f);
}

TEMPLATE_TEST_CASE("cuda engine: KV dtypes match the naive executor with the same codec", "[cuda][engine][kv]",
                   gf::bf16, gf::f16, gf::fp8_e4m3, std::int8_t) {
  using M = gf::models::tiny_gemma2;  // local rings, global tables and both softcaps
  using Kv = TestType;
  gf::testing::random_model<M> m(9);
  std::mt19937 rng(4);
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 3; ++i) prompts.push_back(random_prompt(rng, 9 + 7 * i));
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 6, .block_tokens = 4, .prefix_slots = 0, .logits_rows = 8}};
  const auto ref = run_engine<M, Kv>(m.w, c, naive_executor{}, prompts, 8);
  const auto got = run_engine<M, Kv>(m.w, c, make_executor<M, Kv>(m.w, c), prompts, 8);
  for (std::size_t i = 0; i < prompts.size(); ++i) CHECK(got.tokens[i] == ref.tokens[i]);
  check_close(got.prompt_logits, ref.prompt_logits, 2e-3f);
}

TEMPLATE_TEST_CASE("cuda engine: results are bit-identical across batching, chunking, schedules and graphs",
                   "[cuda][engine][invariance]", gf::models::tiny_gemma1, gf::models::tiny_gemma2, gf::models::tiny_gemma3) {
  using M = TestType;
  gf::testing::random_model<M> m(21);
  std::mt19937 rng(8);
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 4; ++i) prompts.push_back(random_prompt(rng, 11 + 6 * i));
  const int max_tokens = 12;

  gf::engine_config alone_cfg{.limits = {.max_seq_len = 64, .max_batch = 1, .prefill_chunk = 64, .block_tokens = 4, .prefix_slots = 0, .logits_rows = 64}};
  const auto alone = run_engine<M, gf::bf16>(m.w, alone_cfg, make_executor<M, gf::bf16>(m.w, alone_cfg),
                                             {prompts[0]}, max_tokens);

  gf::engine_config batched{.limits = {.max_seq_len = 64, .max_batch = 3, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 0, .logits_rows = 8}};
  struct variant {
    const char* name;
    gc::cuda_executor_config x;
  };
  std::vector<variant> variants;
  {
    gc::cuda_executor_config x;
    variants.push_back({"split-K attention, graphs", x});
    x.attention = gc::attention_schedule::single_pass;
    variants.push_back({"single-pass attention, graphs", x});
    x.decode_graphs = false;
    x.attention = gc::attention_schedule::split_k;
    variants.push_back({"split-K attention, no graphs", x});
    x.attn_split_tokens = 64;
    variants.push_back({"one split", x});
  }
  for (const variant& v : variants) {
    INFO(v.name);
    // The split size is part of the canonical order: compare like with like.
    gf::engine_config solo = alone_cfg;
    const auto ref = v.x.attn_split_tokens == 64
                         ? run_engine<M, gf::bf16>(m.w, solo, make_executor<M, gf::bf16>(m.w, solo, v.x), {prompts[0]}, max_tokens)
                         : alone;
    const auto got = run_engine<M, gf::bf16>(m.w, batched, make_executor<M, gf::bf16>(m.w, batched, v.x), prompts, max_tokens);
    CHECK(got.tokens[0] == ref.tokens[0]);
    REQUIRE(got.prompt_logits.size() == ref.prompt_logits.size());
    for (std::size_t r = 0; r < ref.prompt_logits.size(); ++r) {
      INFO("prompt row " << r);
      CHECK(gf_cuda_test::bit_mismatches(got.prompt_logits[r], ref.prompt_logits[r], M::vocab) == 0);
    }
  }
}

TEST_CASE("cuda engine: decode graphs are captured once per batch size and replayed", "[cuda][engine][graph]") {
  using M = gf::models::tiny_gemma3;
  gf::testing::random_model<M> m(5);
  std::mt19937 rng(2);
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 8, .block_tokens = 4, .prefix_slots = 0}};
  gf::basic_engine<M, gc::cuda_executor, gf::bf16> eng(m.w, c, make_executor<M, gf::bf16>(m.w, c));
  auto h1 = eng.submit(greedy(random_prompt(rng, 7), 20));
  auto h2 = eng.submit(greedy(random_prompt(rng, 9), 20));
  eng.run_until_idle();
  CHECK(h1->completion_tokens() == 20);
  CHECK(h2->completion_tokens() == 20);
  CHECK(eng.executor().graph_captures() >= 1);
  CHECK(eng.executor().graph_replays() >= 10);
}

TEST_CASE("cuda engine: the device arena is the planned layout, byte for byte", "[cuda][engine][plan]") {
  using M = gf::models::tiny_gemma2;
  gf::testing::random_model<M> m(6);
  for (std::uint32_t prefix : {0u, 8u}) {
    gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 3, .prefill_chunk = 8, .block_tokens = 4, .prefix_slots = prefix}};
    gf::basic_engine<M, gc::cuda_executor, gf::fp8_e4m3> eng(m.w, c, make_executor<M, gf::fp8_e4m3>(m.w, c));
    const gf::arena_layout& L = eng.layout();
    INFO("prefix slots " << prefix);
    CHECK(L.backend == gf::backend_kind::cuda);
    CHECK(eng.executor().arena().capacity() == L.arena_bytes);  // the one cudaMalloc
    CHECK(eng.executor().arena().used() == L.arena_bytes);      // weights + every planned region, nothing else
    CHECK(L.bytes("kv_local") > 0);
  }
}

TEST_CASE("cuda engine: quantized weights on the int16, int8 and exact paths", "[cuda][engine][quant]") {
  // Re-encode the random model's matrices as q8_0 (an exact per-block requantization is not needed:
  // both executors read the same q8_0 bytes). The naive executor reads f32/f16/bf16 only, so the
  // reference here is the CUDA exact path itself against the CUDA int16 (default) and int8 paths:
  // tokens may differ in principle (quantized activations are approximate), so only the logits are
  // compared, loosely for int8 and 128x tighter for 15-bit activations. (The CPU backend's bits for
  // the same q8_0 weights: engine_parity_test.cu.)
  using M = gf::models::tiny_gemma1;
  gf::testing::random_model<M> m(31);
  std::vector<std::vector<std::byte>> store;
  gf::testing::requantize_layers_q8_0(m.w, store);
  std::mt19937 rng(6);
  const std::vector<std::vector<std::int32_t>> prompts{random_prompt(rng, 13)};
  gf::engine_config c{.limits = {.max_seq_len = 32, .max_batch = 1, .prefill_chunk = 16, .block_tokens = 4, .prefix_slots = 0, .logits_rows = 16}};
  gc::cuda_executor_config exact;
  exact.quant_precision = gc::matmul_precision::exact;
  gc::cuda_executor_config int8;
  int8.quant_precision = gc::matmul_precision::int8_activations;
  const auto a = run_engine<M, float>(m.w, c, make_executor<M, float>(m.w, c, exact), prompts, 4);
  const auto b = run_engine<M, float>(m.w, c, make_executor<M, float>(m.w, c), prompts, 4);
  const auto d = run_engine<M, float>(m.w, c, make_executor<M, float>(m.w, c, int8), prompts, 4);
  check_close(b.prompt_logits, a.prompt_logits, 2e-3f);
  check_close(d.prompt_logits, a.prompt_logits, 5e-2f);
}

TEST_CASE("cuda engine: the cuBLASLt prefill agrees with the canonical GEMM", "[cuda][engine][cublaslt]") {
  using M = gf::models::tiny_gemma2;
  gf::testing::random_model<M> m(41);
  std::mt19937 rng(12);
  const std::vector<std::vector<std::int32_t>> prompts{random_prompt(rng, 30), random_prompt(rng, 12)};
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 16, .block_tokens = 4, .prefix_slots = 0, .logits_rows = 16}};
  gc::cuda_executor_config blas;
  blas.gemm = gc::prefill_gemm::cublaslt;
  const auto a = run_engine<M, float>(m.w, c, make_executor<M, float>(m.w, c), prompts, 6);
  const auto b = run_engine<M, float>(m.w, c, make_executor<M, float>(m.w, c, blas), prompts, 6);
  check_close(b.prompt_logits, a.prompt_logits, 1e-3f);  // f32 GEMM, another summation order
}

TEST_CASE("cuda executor: arena errors name the numbers", "[cuda][arena]") {
  SECTION("more than the device has") {
    gc::cuda_executor_config x;
    x.arena_bytes = std::uint64_t(1) << 50;  // 1 PiB
    try {
      gc::cuda_executor e(x);
      FAIL("expected out_of_memory");
    } catch (const gf::error& e) {
      CHECK(e.code() == gf::errc::out_of_memory);
      const std::string msg = e.what();
      CHECK(msg.find("requested") != std::string::npos);
      CHECK(msg.find("free of") != std::string::npos);
    }
  }
  SECTION("above an emulated device's plan") {
    gc::cuda_executor_config x;
    x.arena_cap_bytes = 64 * gf::MiB;
    x.arena_bytes = 128 * gf::MiB;
    try {
      gc::cuda_executor e(x);
      FAIL("expected out_of_memory");
    } catch (const gf::error& e) {
      CHECK(e.code() == gf::errc::out_of_memory);
      CHECK(std::string(e.what()).find("above the cap") != std::string::npos);
    }
  }
  SECTION("a sub-allocation past the end") {
    gc::device_arena a(1 * gf::MiB);
    a.allocate(900 * gf::KiB, "first");
    try {
      a.allocate(200 * gf::KiB, "second buffer");
      FAIL("expected out_of_memory");
    } catch (const gf::error& e) {
      CHECK(std::string(e.what()).find("second buffer") != std::string::npos);
    }
  }
}

TEST_CASE("cuda executor: refuses the CPU-only int16_block_sums precision, naming it", "[cuda][engine]") {
  gemmaforge::cuda::cuda_executor_config x;
  x.quant_precision = gemmaforge::matmul_precision::int16_block_sums;
  // Checked before any device work: a clear error, not another rounding under its name.
  CHECK_THROWS_WITH(gemmaforge::cuda::cuda_executor(x), Catch::Contains("int16 block sums"));
}
