// The seed's deployment on a real GPU (scripts/gpu-check step 4; hidden tag [.deploy]: it moves
// 17 GB and runs an 8192-token sequence, so only `gemmaforge_cuda_tests "[.deploy]"` runs it):
// openchat-3.5-0106-gemma's shapes at full depth (Gemma 1 7B: 28 layers, bf16 weights, 17.1 GB),
// max_seq_len 8192, batch 1, on an arena capped to what memory_plan<openchat, rtx4090, 0.90>
// allocates, with that plan's KV pool (11,040 tokens with bf16 KV, 21,744 with fp8). Random
// weights (seeded; each layer reuses one set of host buffers, the device gets 28 copies: the
// memory is real, the values need not be). Prints one DEPLOY line per KV type:
//   plan arena / weights / KV tokens, the executor's required arena, cudaMemGetInfo before and
//   after start-up, KV tokens allocated, prefill seconds and decode tokens/s of a full sequence.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <gemmaforge/backend/cuda/executor.cuh>
#include <gemmaforge/model/gemma1.hpp>
#include <gemmaforge/plan/devices.hpp>
#include <gemmaforge/plan/memory_plan.hpp>
#include <gemmaforge/runtime/engine.hpp>
#include <gemmaforge/runtime/planned_engine.hpp>

#include "support/requests.hpp"

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;

namespace {

using openchat = gf::models::openchat_3_5_0106_gemma;

constexpr gf::serving_config seed_config(gf::dtype kv) {
  gf::serving_config c;
  c.max_seq_len = 8192;
  c.max_batch = 1;
  c.weights = gf::weight_scheme::bf16;
  c.kv = kv;
  c.memory_permille = 900;
  c.prefill_chunk = 512;
  c.block_tokens = 16;
  c.kv_fill = true;  // a GPU deployment: the pool takes every block the budget holds
  return c;
}

// Seeded bf16 values of a small normal-ish spread (a 32-bit LCG: fast enough for 1.2 G values).
struct host_weights {
  std::vector<std::vector<gf::bf16>> mats;
  std::vector<std::vector<float>> gains;
  gf::model_weights<openchat> w;

  gf::weight_view matrix(int rows, int cols, std::uint32_t seed) {
    auto& m = mats.emplace_back(std::size_t(rows) * std::size_t(cols));
    std::uint32_t s = seed * 2654435761u + 1u;
    for (auto& x : m) {
      s = s * 1664525u + 1013904223u;
      x = gf::to_bf16((float(s >> 8) * (1.0f / 16777216.0f) - 0.5f) * 0.04f);
    }
    return gf::weight_view{gf::tensor_format::bf16, reinterpret_cast<const std::byte*>(m.data()), rows, cols};
  }
  const float* gain(int n, float v) { return gains.emplace_back(std::size_t(n), v).data(); }

  host_weights() {
    constexpr int H = openchat::hidden;
    w.embedding = matrix(openchat::vocab, H, 1);
    w.final_norm = gain(H, 0.1f);
    const gf::weight_view q = matrix(openchat::q_dim, H, 2), k = matrix(openchat::kv_dim, H, 3),
                          v = matrix(openchat::kv_dim, H, 4), o = matrix(H, openchat::q_dim, 5),
                          gate = matrix(openchat::ffn, H, 6), up = matrix(openchat::ffn, H, 7),
                          down = matrix(H, openchat::ffn, 8);
    const float* g = gain(H, 0.1f);
    for (auto& l : w.layers) {
      l.q = q, l.k = k, l.v = v, l.o = o, l.gate = gate, l.up = up, l.down = down;
      l.attn_norm = g;
      l.ffn_norm = g;
    }
  }
};

std::uint64_t mem_free() {
  std::size_t f = 0, t = 0;
  cudaMemGetInfo(&f, &t);
  return f;
}

template <class Kv, class Plan>
void run_deployment(const host_weights& hw, const char* kv_name) {
  static_assert(Plan::valid && Plan::fits, "the seed's deployment fits the 4090 plan");
  gf::engine_config c;
  c.limits = gf::planned_limits(Plan::result);  // the plan's allocated blocks, its prefill chunk, no prefix slots
  gc::cuda_executor_config x;
  const gf::arena_layout layout = gf::make_arena_layout<openchat>(gc::cuda_executor::layout_inputs_for(
      x, c.limits, gc::cuda_executor::device_weight_bytes(hw.w), gc::cuda_executor::shape_of(hw.w).quantized));
  const std::uint64_t required = layout.arena_bytes;
  x.arena_cap_bytes = Plan::arena_bytes;  // the 4090's plan, whatever this GPU has
  x.arena_bytes = required;
  INFO("kv " << kv_name << ": plan arena " << Plan::arena_bytes << " B, executor needs " << required << " B");
  const std::uint64_t free_before = mem_free();
  const auto t0 = std::chrono::steady_clock::now();
  gf::basic_engine<openchat, gc::cuda_executor, Kv> eng(hw.w, c, gc::cuda_executor(x));
  const double startup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::uint64_t free_after = mem_free();
  const std::uint64_t kv_tokens = std::uint64_t(eng.pool().total_blocks()) * std::uint64_t(eng.pool().block_tokens());

  std::vector<std::int32_t> prompt(8192 - 64);
  std::uint32_t s = 12345;
  prompt[0] = 2;
  for (std::size_t i = 1; i < prompt.size(); ++i) prompt[i] = std::int32_t(3 + (s = s * 1664525u + 1013904223u) % 255997u);
  std::chrono::steady_clock::time_point t_first{};
  auto r = gf::testing::greedy(prompt, 64);
  const auto t1 = std::chrono::steady_clock::now();
  auto h = eng.submit(std::move(r));
  bool first = true;
  while (!eng.idle()) {
    eng.step();
    if (first && h->completion_tokens() > 0) {
      t_first = std::chrono::steady_clock::now();  // the prompt's last chunk gave the first token
      first = false;
    }
  }
  const auto t2 = std::chrono::steady_clock::now();
  const double prefill_s = std::chrono::duration<double>(t_first - t1).count();
  const double decode_s = std::chrono::duration<double>(t2 - t_first).count();
  const int generated = h->completion_tokens();
  std::printf("DEPLOY kv=%s plan_arena_bytes=%llu plan_weights_bytes=%llu plan_kv_tokens=%llu required_arena_bytes=%llu "
              "free_before=%llu free_after=%llu used=%llu kv_tokens=%llu startup_s=%.2f prompt=%zu generated=%d "
              "prefill_s=%.2f decode_tok_s=%.1f\n",
              kv_name, (unsigned long long)Plan::arena_bytes, (unsigned long long)Plan::weights_bytes,
              (unsigned long long)Plan::kv_capacity_tokens, (unsigned long long)required,
              (unsigned long long)free_before, (unsigned long long)free_after,
              (unsigned long long)(free_before - free_after), (unsigned long long)kv_tokens, startup_s, prompt.size(),
              generated, prefill_s, generated > 1 ? double(generated - 1) / decode_s : 0.0);
  std::fflush(stdout);
  INFO(h->error_message());
  CHECK(h->reason() == gf::finish_reason::length);
  CHECK(generated == 64);
  CHECK(kv_tokens == Plan::kv_capacity_tokens);
  // The engine carved exactly the regions the plan names (the weights region is the file's exact
  // upload, at most the planner's bound).
  const gf::arena_layout& L = eng.layout();
  REQUIRE(L.count == Plan::layout.count);
  for (std::size_t i = 0; i < L.count; ++i) {
    INFO(L.regions[i].name);
    CHECK(L.regions[i].name == Plan::layout.regions[i].name);
    if (L.regions[i].name == "weights") CHECK(L.regions[i].bytes <= Plan::layout.regions[i].bytes);
    else CHECK(L.regions[i].bytes == Plan::layout.regions[i].bytes);
  }
  CHECK(eng.executor().arena().used() == L.arena_bytes);
  CHECK(required <= Plan::arena_bytes);
  CHECK(free_before - free_after <= Plan::arena_bytes + 512 * gf::MiB);  // the arena, plus the context's own
}

}  // namespace

TEST_CASE("cuda deployment: openchat-3.5-0106-gemma at the seed's RTX 4090 plan, bf16 then fp8 KV", "[.deploy][cuda]") {
  const host_weights hw;
  using bf16_plan = gf::memory_plan<openchat, gf::devices::rtx4090, seed_config(gf::dtype::bf16)>;
  using fp8_plan = gf::memory_plan<openchat, gf::devices::rtx4090, seed_config(gf::dtype::fp8_e4m3)>;
  SECTION("bf16 KV") { run_deployment<gf::bf16, bf16_plan>(hw, "bf16"); }
  SECTION("fp8 KV") { run_deployment<gf::fp8_e4m3, fp8_plan>(hw, "fp8"); }
}
