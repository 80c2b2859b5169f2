// No allocation on the decode path: after start-up, engine steps (forward on the CPU backend,
// sampling, streaming text, stop checks) allocate nothing. Counted with a replaced global
// operator new that only counts while a flag is set on the stepping thread.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/model/gemma3.hpp>
#include <gemmaforge/runtime/engine.hpp>
#include <gemmaforge/tokenizer/token_text.hpp>

#include "support/model_path.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
thread_local bool counting = false;
std::atomic<long> allocations{0};

void* counted_alloc(std::size_t n) {
  if (counting) allocations.fetch_add(1, std::memory_order_relaxed);
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
  c.max_seq_len = 512;
  c.max_batch = 2;
  c.prefill_chunk = 16;
  c.prefix_slots = 2;
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
