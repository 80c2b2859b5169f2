// Faults at start-up: nothing half-built survives a failure.
//  - Out of memory: a planned arena larger than what the host reports available is refused before
//    anything is allocated, with the plan's numbers and the system's; an allocation that fails
//    anyway (RLIMIT_AS, in a child process) gets the same kind of message.
//  - All-or-nothing: an engine constructor that throws (bad config, arena too large) leaves no
//    thread running (the executor's pool is joined), a failed bind leaves no mapping of the file,
//    and a thread pool that cannot start all its threads joins the ones it started and throws
//    (it used to reach std::terminate).
//  - engine_config::validate names the bad field for each bad limit (serving_config's own check).
// Run under ASan/UBSan by the sanitizer pass of scripts/test, which also proves nothing leaks.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/backend/cpu/host_memory.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/runtime/engine.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/resource.h>
#endif

#include "io_test_support.hpp"
#include "support/process_self.hpp"
#include "support/random_model.hpp"
#include "support/requests.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;

#if defined(__SANITIZE_ADDRESS__)
#define GF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GF_TEST_ASAN 1
#endif
#endif

namespace {

using gf::testing::mappings_of;
using gf::testing::settled_thread_count;
using gf::testing::thread_count;

template <class F>
std::string error_text(F&& f, gf::errc want) {
  try {
    f();
  } catch (const gf::error& e) {
    CHECK(e.code() == want);
    return e.what();
  }
  FAIL("no error thrown");
  return {};
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// Output of this binary run with `args` (a hidden test case) under `sh -c`, stderr included.
[[maybe_unused]] std::string run_self(const std::string& prefix, const std::string& args) {  // unused under ASan
  const std::string cmd = prefix + std::string(GF_BIN_DIR) + "/gemmaforge_tests " + args + " 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

using tiny = gf::models::tiny_gemma3;
using cpu_engine = gf::basic_engine<tiny, cpu::cpu_executor, float>;

}  // namespace

TEST_CASE("fault: the host reports its available memory", "[cpu][fault]") {
#if defined(__linux__)
  const cpu::host_memory m = cpu::query_host_memory();
  REQUIRE_FALSE(m.source.empty());
  CHECK(m.available > 0);
  CHECK(m.total > 0);
  INFO("available " << gf::format_bytes(m.available) << " (" << m.source << ") of " << gf::format_bytes(m.total));
  SUCCEED();
#else
  WARN("SKIPPED: no memory query on this OS");
#endif
}

TEST_CASE("fault: an arena larger than the host has is refused before allocating, with both numbers", "[cpu][fault]") {
  const cpu::host_memory m = cpu::query_host_memory();
  if (m.source.empty()) {
    WARN("SKIPPED: the system does not report its available memory");
    return;
  }
  cpu::cpu_executor ex({.threads = 1});
  const std::uint64_t absurd = std::uint64_t(1) << 50;  // 1 PiB
  const std::string msg = error_text([&] { (void)ex.allocate_host_arena(absurd); }, gf::errc::out_of_memory);
  CHECK(contains(msg, "cpu_executor: the planned arena of " + gf::format_bytes(absurd) + " (1125899906842624 bytes) does not fit"));
  CHECK(contains(msg, "the system reports "));
  CHECK(contains(msg, " available (" + m.source + ")"));
  // The executor stays usable: an arena that fits is allocated and zeroed.
  std::byte* p = ex.allocate_host_arena(3 * gf::MiB);
  REQUIRE(p != nullptr);
  CHECK(p[0] == std::byte{0});
  CHECK(p[4 * gf::MiB - 1] == std::byte{0});  // rounded up to 2 MiB pages
}

TEST_CASE("fault: an engine whose plan does not fit fails at start-up, names the plan, leaves no thread", "[cpu][fault][engine]") {
  if (cpu::query_host_memory().source.empty()) {
    WARN("SKIPPED: the system does not report its available memory");
    return;
  }
  gf::testing::random_model<tiny> m(1);
  const int before = thread_count();
  gf::engine_config c{.limits = {.max_seq_len = 256, .max_batch = 4, .prefill_chunk = 16, .kv_blocks = 1 << 30}};
  c.threaded = true;
  const std::string msg =
      error_text([&] { cpu_engine eng(m.w, c, cpu::cpu_executor({.threads = 4})); }, gf::errc::out_of_memory);
  CHECK(contains(msg, "cannot start the engine: its plan needs "));
  CHECK(contains(msg, "KV pool "));
  CHECK(contains(msg, "(1073741824 blocks of 16 tokens: max_batch 4 x max_seq_len 256)"));
  CHECK(contains(msg, "+ workspace "));
  CHECK(contains(msg, "does not fit: the system reports "));
  CHECK(contains(msg, "Lower max_seq_len or max_batch"));
  // The executor's 3 pool threads were started and are joined again; no engine worker started.
  CHECK(settled_thread_count(before) == before);
  // The same process then starts a normal engine.
  gf::engine_config ok{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 16, .block_tokens = 16}};
  ok.threaded = true;
  {
    cpu_engine eng(m.w, ok, cpu::cpu_executor({.threads = 2}));
    gf::generation_request r;
    r.prompt = {2, 10, 11};
    r.stop.max_tokens = 4;
    r.decode_text = false;
    const auto h = eng.generate(std::move(r));  // outside CHECK, which spells its expression twice
    CHECK(h->completion_tokens() == 4);
    CHECK(settled_thread_count(before + 2) == before + 2);  // the engine's worker + 1 pool thread
  }
  CHECK(settled_thread_count(before) == before);
}

TEST_CASE("fault: engine_config::validate names each bad limit, the constructor leaves no thread", "[cpu][fault][config]") {
  gf::testing::random_model<tiny> m(2);
  const gf::engine_config good{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 16}};
  REQUIRE_NOTHROW(good.validate());
  auto with = [&](auto edit) {
    gf::engine_config c = good;
    edit(c);
    return c;
  };
  struct bad_case {
    gf::engine_config config;
    std::string message;
  };
  const bad_case cases[] = {
      {with([](auto& c) { c.limits.max_seq_len = 0; }), "max_seq_len must be at least 1"},
      {with([](auto& c) { c.limits.max_batch = 0; }), "max_batch must be at least 1"},
      {with([](auto& c) { c.limits.prefill_chunk = 0; }), "prefill_chunk must be at least 1"},
      {with([](auto& c) { c.limits.block_tokens = 24; }), "block_tokens must be a power of two"},
      {with([](auto& c) { c.limits.block_tokens = 0; }), "block_tokens must be a power of two"},
      {with([](auto& c) { c.limits.block_tokens = 4096; }), "block_tokens must be at most 1024"},
      {with([](auto& c) { c.max_queue = -1; }), "max_queue must be >= 0"},
      {with([](auto& c) { c.limits.max_seq_len = (1 << 24) + 1; }), "max_seq_len must be at most 16777216"},
      {with([](auto& c) { c.limits.max_batch = 65537; }), "max_batch must be at most 65536"},
      {with([](auto& c) { c.limits.max_batch = 2147483647; }), "max_batch must be at most 65536"},
      {with([](auto& c) { c.max_queue = 2147483647; }), "max_queue must be at most 1048576"},
      {with([](auto& c) { c.limits.logits_rows = 2147483647; }), "logits_rows must be at most 16777216"},
      {with([](auto& c) { c.limits.prefix_slots = 65537; }), "prefix_slots must be at most 65536"},
      {with([](auto& c) {
         c.limits.max_batch = 65536;
         c.limits.max_seq_len = 1 << 24;
       }),
       "the KV pool cannot index more than 2147483647 blocks"},
  };
  const int before = thread_count();
  for (const bad_case& b : cases) {
    INFO(b.message);
    CHECK(error_text([&] { b.config.validate(); }, gf::errc::invalid_argument) == b.message);
    gf::engine_config threaded = b.config;
    threaded.threaded = true;
    CHECK(error_text([&] { cpu_engine eng(m.w, threaded, cpu::cpu_executor({.threads = 3})); }, gf::errc::invalid_argument) ==
          b.message);
  }
  CHECK(settled_thread_count(before) == before);
  // A sequence longer than the descriptor's positions: named with both numbers.
  CHECK(error_text([&] { cpu_engine eng(m.w, with([](auto& c) { c.limits.max_seq_len = tiny::max_positions + 1; }), cpu::cpu_executor({.threads = 2})); },
                   gf::errc::invalid_argument) ==
        "max_seq_len " + std::to_string(tiny::max_positions + 1) + " exceeds tiny-gemma3's " +
            std::to_string(tiny::max_positions) + " positions");
  CHECK(settled_thread_count(before) == before);
}

TEST_CASE("fault: a failed load leaves no mapping of the file", "[cpu][fault][io]") {
  gf_test::temp_dir d;
  // A good tiny GGUF, then copies truncated at 10 points and one of another descriptor's shapes.
  const gf_test::bytes good = gf_test::synthetic_gguf<tiny>({.with_tokenizer = true}).build();
  gf_test::write_file(d / "good.gguf", good);
  {
    auto loaded = gf::load_model<tiny>(d / "good.gguf");
    CHECK(mappings_of(d / "good.gguf") >= 1);  // the check below can see a mapping
  }
  CHECK(mappings_of(d / "good.gguf") == 0);
  for (int i = 1; i <= 10; ++i) {
    const std::size_t n = good.size() * std::size_t(i) / 11;
    const auto path = d / ("cut" + std::to_string(i) + ".gguf");
    gf_test::write_file(path, gf_test::bytes(good.begin(), good.begin() + std::ptrdiff_t(n)));
    CHECK_THROWS_AS(gf::load_model<tiny>(path), gf::error);
    CHECK(mappings_of(path) == 0);
  }
  const auto other = d / "tiny-gemma2.gguf";
  gf_test::write_file(other, gf_test::synthetic_gguf<gf::models::tiny_gemma2>().build());
  const std::string msg = error_text([&] { (void)gf::load_model<tiny>(other); }, gf::errc::model_mismatch);
  CHECK(contains(msg, "cannot bind as tiny-gemma3"));
  CHECK(mappings_of(other) == 0);
}

#if defined(__linux__)
// Child side of the two tests below: run in a process of its own with an address-space limit.
namespace {
void limit_address_space(std::uint64_t headroom) {
  std::ifstream status("/proc/self/status");
  std::uint64_t vm_kb = 0;
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) vm_kb = std::stoull(line.substr(7));
  const rlimit r{rlim_t(vm_kb * 1024 + headroom), rlim_t(vm_kb * 1024 + headroom)};
  REQUIRE(setrlimit(RLIMIT_AS, &r) == 0);
}
}  // namespace

TEST_CASE("fault child: arena under RLIMIT_AS", "[.fault_rlimit_arena]") {
  cpu::cpu_executor ex({.threads = 1});
  limit_address_space(64 * gf::MiB);
  try {
    (void)ex.allocate_host_arena(512 * gf::MiB);
    std::printf("child: allocated\n");
  } catch (const gf::error& e) {
    std::printf("child: %s: %s\n", std::string(gf::to_string(e.code())).c_str(), e.what());
  }
}

TEST_CASE("fault child: thread pool under RLIMIT_AS", "[.fault_rlimit_threads]") {
  limit_address_space(64 * gf::MiB);
  try {
    cpu::thread_pool pool(256);  // 255 stacks of >= 2 MiB cannot fit in 64 MiB
    std::printf("child: started %d threads\n", pool.size());
  } catch (const gf::error& e) {
    std::printf("child: %s: %s\n", std::string(gf::to_string(e.code())).c_str(), e.what());
  }
  std::printf("child: threads left %d\n", thread_count());
}
#endif

TEST_CASE("fault: allocation failures under an address-space limit are errors, not crashes", "[cpu][fault]") {
#if !defined(__linux__)
  WARN("SKIPPED: needs RLIMIT_AS and popen");
#elif defined(GF_TEST_ASAN)
  // ASan reserves terabytes of shadow address space at start-up: it cannot run under RLIMIT_AS.
  WARN("SKIPPED under AddressSanitizer (RLIMIT_AS)");
#else
  const std::string arena = run_self("", "'[.fault_rlimit_arena]'");
  INFO(arena);
  // The address-space limit is one of the sources the host check reads: refused before allocating.
  CHECK(contains(arena, "child: out of memory: cpu_executor: the planned arena of 512.0 MiB (536870912 bytes) does not fit"));
  CHECK(contains(arena, "(the address-space limit (RLIMIT_AS) less the process's size)"));
  const std::string threads = run_self("", "'[.fault_rlimit_threads]'");
  INFO(threads);
  CHECK(contains(threads, "child: out of memory: thread_pool: cannot start thread "));
  CHECK(contains(threads, " of 256: "));
  CHECK(contains(threads, "child: threads left 1"));  // the started workers were joined
#endif
}

namespace {
std::vector<std::int32_t> prompt_of(std::mt19937& rng, int n) { return gf::testing::random_prompt(rng, n, tiny::vocab - 1); }
}  // namespace
using gf::testing::greedy;

// The runtime rows of the bad-input matrix (docs/reliability.md) on the CPU executor, the one
// users run (engine_scheduler_test covers the same rules with the naive executor).
TEST_CASE("fault: runtime bad input on the CPU engine: errors name the numbers, nothing is lost", "[cpu][fault][engine]") {
  gf::testing::random_model<tiny> m(11);
  std::mt19937 rng(17);
  const int before = thread_count();
  auto submit_error = [](cpu_engine& eng, gf::generation_request r, gf::errc want) {
    return error_text([&] { (void)eng.submit(std::move(r)); }, want);
  };

  SECTION("a prompt longer than the context is refused; the engine keeps serving") {
    cpu_engine eng(m.w, {.limits = {.max_seq_len = 32, .max_batch = 2, .prefill_chunk = 8, .block_tokens = 8, .prefix_slots = 0}},
                   cpu::cpu_executor({.threads = 2}));
    CHECK(submit_error(eng, greedy(prompt_of(rng, 33), 4), gf::errc::capacity) ==
          "prompt of 33 tokens does not fit the context of 32 tokens (at least one must be left to generate)");
    CHECK(submit_error(eng, greedy(prompt_of(rng, 32), 1), gf::errc::capacity) ==
          "prompt of 32 tokens does not fit the context of 32 tokens (at least one must be left to generate)");
    const auto h = eng.generate(greedy(prompt_of(rng, 31), 8));
    CHECK(h->reason() == gf::finish_reason::length);
    CHECK(h->completion_tokens() == 1);  // the context's last position
    CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
  }

  SECTION("cancel during prefill returns every block; the other requests are unaffected") {
    const gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 4, .block_tokens = 8, .prefix_slots = 0}};
    const auto long_prompt = prompt_of(rng, 40), other = prompt_of(rng, 9);
    std::vector<std::int32_t> other_alone;
    {
      cpu_engine eng(m.w, c, cpu::cpu_executor({.threads = 2}));
      other_alone = eng.generate(greedy(other, 6))->output_tokens();
    }
    cpu_engine eng(m.w, c, cpu::cpu_executor({.threads = 2}));
    auto victim = eng.submit(greedy(long_prompt, 6));
    auto bystander = eng.submit(greedy(other, 6));
    for (int i = 0; i < 3; ++i) eng.step();  // 3 chunks of 4 of the victim's 40 prompt tokens
    CHECK(!victim->done());
    CHECK(victim->completion_tokens() == 0);
    victim->cancel();
    eng.run_until_idle();
    CHECK(victim->reason() == gf::finish_reason::cancelled);
    CHECK(victim->completion_tokens() == 0);
    CHECK(bystander->reason() == gf::finish_reason::length);
    CHECK(bystander->output_tokens() == other_alone);
    CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
  }

  SECTION("pool exhaustion: 10x more requests than fit wait, and all complete with their own output") {
    // 5 blocks of 8 tokens per request (16 prompt + 24 output); the pool holds 10: 2 at a time.
    const gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 4, .prefill_chunk = 8, .block_tokens = 8, .kv_blocks = 10, .prefix_slots = 0}, .threaded = true};
    std::vector<std::vector<std::int32_t>> prompts;
    for (int i = 0; i < 20; ++i) prompts.push_back(prompt_of(rng, 16));
    std::vector<std::vector<std::int32_t>> alone;
    {
      cpu_engine eng(m.w, {.limits = {.max_seq_len = 64, .max_batch = 1, .prefill_chunk = 8, .block_tokens = 8, .prefix_slots = 0}},
                     cpu::cpu_executor({.threads = 2}));
      for (const auto& p : prompts) alone.push_back(eng.generate(greedy(p, 24))->output_tokens());
    }
    cpu_engine eng(m.w, c, cpu::cpu_executor({.threads = 2}));
    std::vector<gf::request_handle> hs;
    for (const auto& p : prompts) hs.push_back(eng.submit(greedy(p, 24)));
    for (std::size_t i = 0; i < hs.size(); ++i) {
      hs[i]->wait();
      INFO("request " << i);
      CHECK(hs[i]->reason() == gf::finish_reason::length);
      CHECK(hs[i]->output_tokens() == alone[i]);
    }
    eng.shutdown();  // joins the worker: the counters below are final
    const gf::engine_stats s = eng.stats();
    CHECK(s.requests_finished == 20);
    CHECK(s.requests_failed == 0);
    CHECK(s.requests_rejected == 0);
    CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
  }

  SECTION("shutdown cancels what runs and waits; a request after shutdown is refused") {
    const gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 8, .block_tokens = 8, .prefix_slots = 0}};
    {
      // Stepped by hand: 2 requests part-way through their output, 4 waiting, then shutdown.
      cpu_engine eng(m.w, c, cpu::cpu_executor({.threads = 2}));
      std::vector<gf::request_handle> hs;
      for (int i = 0; i < 6; ++i) hs.push_back(eng.submit(greedy(prompt_of(rng, 12), 40)));
      for (int i = 0; i < 6; ++i) eng.step();
      CHECK(hs[0]->completion_tokens() > 0);
      eng.shutdown();
      for (const auto& h : hs) {
        CHECK(h->done());
        CHECK(h->reason() == gf::finish_reason::cancelled);
      }
      CHECK(hs[5]->completion_tokens() == 0);
      CHECK(submit_error(eng, greedy(prompt_of(rng, 5), 4), gf::errc::shutdown) == "engine is shut down: request refused");
      CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
    }
    {
      // Threaded: whatever the worker reached, every request ends, finished whole or cancelled.
      gf::engine_config t = c;
      t.threaded = true;
      cpu_engine eng(m.w, t, cpu::cpu_executor({.threads = 2}));
      std::vector<gf::request_handle> hs;
      for (int i = 0; i < 6; ++i) hs.push_back(eng.submit(greedy(prompt_of(rng, 12), 40)));
      eng.shutdown();
      for (const auto& h : hs) {
        CHECK(h->done());
        if (h->reason() != gf::finish_reason::cancelled) {
          CHECK(h->reason() == gf::finish_reason::length);
          CHECK(h->completion_tokens() == 40);
        }
      }
      CHECK(submit_error(eng, greedy(prompt_of(rng, 5), 4), gf::errc::shutdown) == "engine is shut down: request refused");
      CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
    }
  }
  CHECK(settled_thread_count(before) == before);
}
