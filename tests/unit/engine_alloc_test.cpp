// No allocation on the decode path: after start-up, engine steps (forward on the CPU backend,
// sampling, streaming text, stop checks) allocate nothing. Counted with a replaced global
// operator new that only counts while a flag is set on the stepping thread.
// And the plan is the allocation: what an engine allocates at start-up is its planned arena,
// byte for byte, plus host bookkeeping within a stated bound.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/model/gemma3.hpp>
#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/plan/memory_plan.hpp>
#include <gemmaforge/runtime/engine.hpp>
#include <gemmaforge/tokenizer/token_text.hpp>

#include "support/model_path.hpp"
#include "support/random_model.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
thread_local bool counting = false;
std::atomic<long> allocations{0};
std::atomic<std::uint64_t> allocated_bytes{0};

void* counted_alloc(std::size_t n) {
  if (counting) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    allocated_bytes.fetch_add(n, std::memory_order_relaxed);
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

// Every form that allocates with malloc is replaced, nothrow included (Catch2 uses it): a form left
// to the runtime would pair its allocator with the free() below (ASan: alloc-dealloc-mismatch).
// The aligned forms are left alone, new and delete alike.
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace gf = gemmaforge;

TEST_CASE("engine: decode and prefill steps allocate nothing after start-up", "[cpu][engine][model]") {
  using M = gf::models::gemma_3_270m;
  const auto path = gf::testing::real_model_path();
  REQUIRE(std::filesystem::exists(path));
  auto bound = gf::load_model<M>(path);
  auto tok = std::make_shared<const gf::tokenizer>(gf::tokenizer::load(path));
  gf::engine_config c;
  c.limits.max_seq_len = 512;
  c.limits.max_batch = 2;
  c.limits.prefill_chunk = 16;
  c.limits.prefix_slots = 2;
  c.stop_ids = {tok->eos_id()};
  gf::cpu::executor_options o;
  o.threads = 2;
  gf::basic_engine<M, gf::cpu::cpu_executor, gf::bf16> eng(bound.weights(), c, gf::cpu::cpu_executor(o),
                                                           std::make_shared<gf::tokenizer_text>(tok));
  std::string streamed;
  streamed.reserve(1 << 16);
  auto request = [&](const char* text) {
    gf::generation_request r;
    r.prompt = tok->encode(text);
    r.sampling.temperature = 0.7f;
    r.sampling.top_k = 40;
    r.sampling.top_p = 0.9f;
    r.sampling.repetition_penalty = 1.1f;
    r.stop.max_tokens = 40;
    r.stop.ignore_eos = true;
    r.stop.stop_strings = {"never appears \x01"};
    r.on_token = [&](const gf::token_event& e) { streamed.append(e.text); };
    return r;
  };
  auto a = eng.submit(request("The history of the printing press begins in"));
  auto b = eng.submit(request("A recipe for bread: first, take four cups of flour and add some water, then knead it well"));
  for (int i = 0; i < 6; ++i) eng.step();  // warm-up: admission, first prefill chunks, first decodes

  allocations = 0;
  counting = true;
  for (int i = 0; i < 12; ++i) eng.step();  // decode rows of both + remaining prefill chunks
  counting = false;
  const long during = allocations.load();
  INFO("allocations during 12 steps: " << during);
  CHECK(during == 0);
  eng.run_until_idle();
  CHECK(a->completion_tokens() == 40);
  CHECK(b->completion_tokens() == 40);
  CHECK(!streamed.empty());
}

namespace {

// Host bookkeeping an engine keeps outside the arena (the pool's block tables, free lists, prefix
// entries and reference counts, the scheduler's request lists), stated as a bound: at most 16
// bytes per table entry, block, slot and queue place, plus 64 KiB for the fixed objects.
std::uint64_t bookkeeping_bound(const gf::serving_config& c, std::int32_t max_queue, const gf::arena_layout& L) {
  const std::uint64_t per_seq = gf::blocks_per_sequence(c);
  const std::uint64_t entries = std::uint64_t(c.max_batch) * per_seq + std::uint64_t(c.prefix_slots) * (c.max_seq_len + per_seq) +
                                L.global_blocks + L.ring_blocks * (c.max_batch + c.prefix_slots) + c.max_batch + c.prefix_slots +
                                std::uint64_t(max_queue);
  return 16 * entries + 64 * gf::KiB;
}

template <class Model, class Kv>
void check_engine_allocates_its_plan(const gf::testing::random_model<Model>& m, gf::serving_config c) {
  gf::engine_config ec;
  ec.limits = c;
  ec.max_queue = 64;
  gf::cpu::executor_options o;
  o.threads = 1;
  gf::cpu::cpu_executor ex(o);
  allocated_bytes = 0;
  counting = true;
  auto eng = std::make_unique<gf::basic_engine<Model, gf::cpu::cpu_executor, Kv>>(m.w, ec, std::move(ex));
  counting = false;
  const std::uint64_t heap = allocated_bytes.load();
  c.kv = gf::dtype_of<Kv>::value;
  // The host plan with this config (a budget large enough to fit: the figure compared is the layout).
  gf::device_info host{.name = "host", .kind = gf::device_kind::host, .memory_bytes = std::uint64_t(1) << 50};
  const gf::plan_result p = gf::make_plan<Model>(host, c);
  const gf::arena_layout& L = eng->layout();
  INFO(Model::name << " kv " << gf::to_string(c.kv) << " batch " << c.max_batch << " ctx " << c.max_seq_len << " prefix "
                   << c.prefix_slots << ": arena " << L.arena_bytes << " plan " << p.arena_bytes << ", heap " << heap);
  CHECK(p.valid());
  CHECK(L.arena_bytes == p.arena_bytes);                                      // what was carved is what was planned
  CHECK(eng->executor().allocated_bytes() == gf::round_up(p.arena_bytes, 2 * gf::MiB));  // the one allocation (huge-page rounded)
  CHECK(heap <= bookkeeping_bound(c, ec.max_queue, L));
  CHECK(heap < p.arena_bytes);
}

}  // namespace

TEST_CASE("plan: a CPU engine allocates exactly its planned arena, for each tiny descriptor and a grid of configs", "[cpu][engine][plan]") {
  const gf::testing::random_model<gf::models::tiny_gemma1> m1(1);
  const gf::testing::random_model<gf::models::tiny_gemma2> m2(2);
  const gf::testing::random_model<gf::models::tiny_gemma3> m3(3);
  for (std::uint32_t batch : {1u, 4u, 16u})
    for (std::uint32_t ctx : {64u, 128u, 0u})  // 0: the descriptor's own limit (256)
      for (std::uint32_t prefix : {0u, 8u}) {
        auto cfg = [&](int max_positions) {
          return gf::serving_config{.max_seq_len = ctx ? ctx : std::uint32_t(max_positions), .max_batch = batch,
                                    .prefill_chunk = 32, .block_tokens = 16, .prefix_slots = prefix};
        };
        check_engine_allocates_its_plan<gf::models::tiny_gemma1, gf::bf16>(m1, cfg(gf::models::tiny_gemma1::max_positions));
        check_engine_allocates_its_plan<gf::models::tiny_gemma2, float>(m2, cfg(gf::models::tiny_gemma2::max_positions));
        check_engine_allocates_its_plan<gf::models::tiny_gemma3, gf::fp8_e4m3>(m3, cfg(gf::models::tiny_gemma3::max_positions));
        check_engine_allocates_its_plan<gf::models::tiny_gemma3, std::int8_t>(m3, cfg(gf::models::tiny_gemma3::max_positions));
        check_engine_allocates_its_plan<gf::models::tiny_gemma2, gf::f16>(m2, cfg(gf::models::tiny_gemma2::max_positions));
      }
}
