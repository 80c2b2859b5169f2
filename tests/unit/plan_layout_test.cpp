// The plan is the allocation (plan/arena_layout.hpp): for every registered descriptor and a grid of
// configs, the layout the planner sums is well formed (aligned, disjoint, complete), its KV regions
// are the pool's own sizes, its CPU scratch regions hold what the kernels need, and the CUDA
// layout names exactly the regions the CUDA executor carves. Allocation itself is counted in
// engine_alloc_test.cpp (the CPU engine allocates its planned arena byte for byte).
#include <catch2/catch.hpp>

#include "support/test_models.hpp"
#include <gemmaforge/backend/cpu/attention.hpp>
#include <gemmaforge/backend/cpu/matmul.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/plan.hpp>

#include <set>
#include <string>

namespace gf = gemmaforge;

namespace {

constexpr gf::device_info big_host{.name = "host", .kind = gf::device_kind::host, .memory_bytes = std::uint64_t(1) << 50};
constexpr gf::device_info big_gpu{.name = "gpu", .kind = gf::device_kind::cuda, .memory_bytes = std::uint64_t(1) << 50,
                                  .context_reserve_bytes = gf::cuda_context_reserve, .blas_workspace_bytes = gf::cuda_blas_workspace};

// Regions of one space follow each other at aligned offsets and add up to the space's size.
void check_well_formed(const gf::arena_layout& L) {
  std::uint64_t at[2] = {0, 0};
  std::set<std::string> names;
  for (std::size_t i = 0; i < L.count; ++i) {
    const gf::arena_region& r = L.regions[i];
    INFO(std::string(r.name));
    CHECK(names.insert(std::string(r.name)).second);  // names are unique
    CHECK(r.offset % gf::arena_alignment == 0);
    std::uint64_t& end = at[r.space == gf::memory_space::arena ? 0 : 1];
    CHECK(r.offset == end);
    end = r.offset + gf::round_up(r.bytes, gf::arena_alignment);
  }
  CHECK(at[0] == L.arena_bytes);
  CHECK(at[1] == L.host_bytes);
}

template <class Model, class Kv>
void check_kv_and_cpu_scratch(const gf::arena_layout& L, const gf::serving_config& c) {
  gf::kv_pool_config pc;
  pc.block_tokens = std::int32_t(c.block_tokens);
  pc.max_batch = std::int32_t(c.max_batch);
  pc.max_seq_len = std::int32_t(c.max_seq_len);
  pc.prefix_slots = std::int32_t(c.prefix_slots);
  pc.global_blocks = std::int32_t(L.global_blocks);
  CHECK(L.bytes("kv_global") == gf::kv_pool<Model, Kv>::global_bytes(pc));
  CHECK(L.bytes("kv_local") == gf::kv_pool<Model, Kv>::local_bytes(pc));
  // The kernels' own scratch formulas fit in the regions the executor carves.
  const int T = int(L.step_tokens);
  const int widest = int(gf::round_up(std::uint64_t(std::max({Model::hidden, Model::q_dim, Model::ffn})), 32));
  for (auto p : {gf::cpu::matmul_precision::int8_activations, gf::cpu::matmul_precision::int16_activations,
                 gf::cpu::matmul_precision::int16_block_sums})
    CHECK(gf::cpu::matmul_scratch_bytes(widest, T, p) <= L.bytes("cpu_act_quant"));
  CHECK(gf::cpu::attention_scratch_bytes<typename Model::attention, Kv>(T, int(c.max_seq_len)) == L.bytes("cpu_attention"));
  CHECK(L.bytes("cpu_rope") == 2 * (Model::head_dim / 2) * (1 + 2 * std::uint64_t(T)) * 4);
}

template <class Model>
void check_model(const gf::serving_config& c) {
  const gf::plan_result p = gf::make_plan<Model>(big_host, c);
  REQUIRE(p.valid());
  const gf::arena_layout& L = p.layout;
  check_well_formed(L);
  CHECK(L.backend == gf::backend_kind::cpu);
  CHECK(L.host_bytes == 0);  // the CPU keeps everything in its one arena
  CHECK(p.arena_bytes == L.arena_bytes);
  CHECK(L.global_blocks == gf::needed_blocks(c));
  // The plan's terms are the layout's regions.
  CHECK(p.workspace_bytes + gf::round_up(L.bytes("kv_global"), 256) + gf::round_up(L.bytes("kv_local"), 256) == L.arena_bytes);
  CHECK(L.bytes("kv_local") == p.ring_bytes + p.prefix_snapshot_bytes);
  switch (c.kv) {
    case gf::dtype::f32: check_kv_and_cpu_scratch<Model, float>(L, c); break;
    case gf::dtype::f16: check_kv_and_cpu_scratch<Model, gf::f16>(L, c); break;
    case gf::dtype::bf16: check_kv_and_cpu_scratch<Model, gf::bf16>(L, c); break;
    case gf::dtype::fp8_e4m3: check_kv_and_cpu_scratch<Model, gf::fp8_e4m3>(L, c); break;
    case gf::dtype::int8: check_kv_and_cpu_scratch<Model, std::int8_t>(L, c); break;
  }

  // The CUDA layout: the weights first, then exactly the regions cuda_executor::carve takes.
  const gf::plan_result g = gf::make_plan<Model>(big_gpu, c);
  const gf::arena_layout& G = g.layout;
  check_well_formed(G);
  REQUIRE(G.count > 0);
  CHECK(G.regions[0].name == "weights");
  CHECK(G.regions[0].offset == 0);
  std::set<std::string> names;
  for (std::size_t i = 0; i < G.count; ++i) names.insert(std::string(G.regions[i].name));
  std::set<std::string> want = {"weights", "kv_global", "kv_local", "x", "xn", "q", "attn", "k", "v", "gate", "up", "logits",
                                "step_tokens", "step_positions", "step_logit_rows", "step_seqs", "step_requests", "sampler",
                                "cuda_step_meta", "cuda_stage_k", "cuda_stage_v", "cuda_stage_k_scales",
                                "cuda_stage_v_scales", "cuda_meta_pinned", "cuda_logits_host"};
  if (gf::cuda::attention_max_splits(c.max_seq_len) > 1) want.insert("cuda_attn_partials");
  if (gf::is_block_quantized(c.weights)) want.insert("cuda_act_quant");  // quantized activations, int16 by default
  CHECK(names == want);
  // Host staging is host memory: it does not take device budget.
  CHECK(g.arena_bytes == G.arena_bytes);
  CHECK(G.find("sampler")->space == gf::memory_space::host);
  CHECK(G.find("logits")->space == gf::memory_space::arena);
}

}  // namespace

TEST_CASE("layout: every runnable descriptor x batch x context x KV type x prefix slots is planned as carved", "[plan][layout]") {
  int checked = 0;
  gf::for_each_type(gf::testing::registry_with_test_models{}, [&](auto tag) {
    using M = typename decltype(tag)::type;
    if constexpr (M::runnable) {
      for (std::uint32_t batch : {1u, 4u, 16u})
        for (std::uint32_t ctx : {512u, 8192u, std::uint32_t(M::max_positions)})
          for (gf::dtype kv : {gf::dtype::f32, gf::dtype::f16, gf::dtype::bf16, gf::dtype::fp8_e4m3, gf::dtype::int8})
            for (std::uint32_t prefix : {0u, 8u}) {
              const gf::serving_config c{.max_seq_len = std::min<std::uint32_t>(ctx, M::max_positions), .max_batch = batch,
                                         .kv = kv, .prefix_slots = prefix};
              INFO(M::name << " batch " << batch << " ctx " << c.max_seq_len << " kv " << gf::to_string(kv) << " prefix " << prefix);
              check_model<M>(c);
              ++checked;
            }
    }
  });
  CHECK(checked >= 11 * 90);
}

TEST_CASE("layout: prefix-cache snapshots are a planned region and cost what their rings cost", "[plan][layout]") {
  using M = gf::models::gemma_2_9b;
  const gf::serving_config none{.max_seq_len = 8192, .max_batch = 1};
  gf::serving_config eight = none;
  eight.prefix_slots = 8;
  const gf::plan_result a = gf::make_plan<M>(gf::device_info_of<gf::devices::rtx4090>(), none);
  const gf::plan_result b = gf::make_plan<M>(gf::device_info_of<gf::devices::rtx4090>(), eight);
  CHECK(a.prefix_snapshot_bytes == 0);
  CHECK(b.prefix_snapshot_bytes == 8 * a.ring_bytes_per_sequence);
  CHECK(b.layout.bytes("kv_local") == a.layout.bytes("kv_local") * 9);
  CHECK(b.pool_bytes_available == a.pool_bytes_available - std::int64_t(b.prefix_snapshot_bytes));
}

TEST_CASE("layout: a GPU deployment fills its budget, and the seed's arena is the plan's", "[plan][layout]") {
  constexpr gf::serving_config seed{.max_seq_len = 8192, .max_batch = 1, .kv_fill = true};
  using plan = gf::memory_plan<gf::models::openchat_3_5_0106_gemma, gf::devices::rtx4090, seed>;
  static_assert(plan::fits);
  STATIC_REQUIRE(plan::result.kv_allocated_blocks == plan::kv_capacity_blocks);
  STATIC_REQUIRE(plan::layout.bytes("kv_global") == plan::kv_capacity_blocks * plan::result.kv_block_bytes);
  // Everything the arena holds plus the reserve is within the budget, and less than a block short of it.
  STATIC_REQUIRE(plan::arena_bytes + plan::reserve_bytes <= plan::budget_bytes);
  STATIC_REQUIRE(plan::budget_bytes - (plan::arena_bytes + plan::reserve_bytes) < plan::result.kv_block_bytes + gf::arena_alignment);
}
