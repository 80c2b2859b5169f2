// Engine and scheduler on random tiny models with the naive executor: continuous batching gives the
// same greedy outputs as running each request alone, the pool is whole again afterwards, requests
// wait rather than fail when the pool is full, prefix sharing changes nothing but the work done,
// and bad requests get clear errors.
#include <catch2/catch.hpp>

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/runtime/engine.hpp>

#include "support/naive_executor.hpp"
#include "support/random_model.hpp"
#include "support/requests.hpp"

#include <chrono>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace gf = gemmaforge;
using gf::testing::naive_executor;
using gf::testing::greedy;
using gf::testing::random_prompt;
using gf::testing::continued;

namespace {
template <class Model, class Kv = float>
using naive_engine = gf::basic_engine<Model, naive_executor, Kv>;

// Steps the engine until it is idle (or max_steps steps have run), calling check() after each step.
template <class Engine, class Check>
void step_until_idle(Engine& eng, Check check, int max_steps = std::numeric_limits<int>::max()) {
  for (int steps = 0; !eng.idle() && steps < max_steps; ++steps) {
    eng.step();
    check();
  }
}

template <class Model, class Kv = float>
std::vector<std::vector<std::int32_t>> run_alone(const gf::model_weights<Model>& w, const std::vector<std::vector<std::int32_t>>& prompts,
                                                 int max_tokens) {
  std::vector<std::vector<std::int32_t>> out;
  for (const auto& p : prompts) {
    gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 1, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 0}};
    naive_engine<Model, Kv> eng(w, c, naive_executor{});
    out.push_back(eng.generate(greedy(p, max_tokens))->output_tokens());
  }
  return out;
}
}  // namespace

TEMPLATE_TEST_CASE("engine: batched greedy outputs equal running each request alone", "[cpu][engine][scheduler]",
                   gf::models::tiny_gemma1, gf::models::tiny_gemma2, gf::models::tiny_gemma3) {
  using M = TestType;
  gf::testing::random_model<M> m(7);
  std::mt19937 rng(3);
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 7; ++i) prompts.push_back(random_prompt(rng, 3 + 4 * i % 23));
  const int max_tokens = 12;
  const auto alone = run_alone<M>(m.w, prompts, max_tokens);

  // A small pool: 3 slots and blocks for ~2.5 sequences, so requests queue and interleave.
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 3, .prefill_chunk = 5, .block_tokens = 4, .kv_blocks = 20, .prefix_slots = 0}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  std::vector<gf::request_handle> hs;
  for (const auto& p : prompts) hs.push_back(eng.submit(greedy(p, max_tokens)));
  int max_running = 0, max_waiting = 0;
  step_until_idle(eng, [&] {
    const auto s = eng.stats();
    max_running = std::max(max_running, s.running);
    max_waiting = std::max(max_waiting, s.waiting);
    REQUIRE(s.kv_blocks_used + s.kv_blocks_reserved <= s.kv_blocks_total);
  });
  CHECK(max_running == 3);
  CHECK(max_waiting > 0);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    INFO("request " << i);
    CHECK(hs[i]->reason() == gf::finish_reason::length);
    CHECK(hs[i]->output_tokens() == alone[i]);
  }
  CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
  CHECK(eng.pool().reserved_blocks() == 0);
}

TEST_CASE("engine: prefix sharing reuses the cached prompt and changes no output", "[cpu][engine][prefix]") {
  using M = gf::models::tiny_gemma3;  // local rings are copied with the prefix
  gf::testing::random_model<M> m(11);
  std::mt19937 rng(5);
  const auto system = random_prompt(rng, 21);
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 4; ++i) prompts.push_back(continued(system, rng, 3 + i));
  const auto alone = run_alone<M>(m.w, prompts, 10);
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 2}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  std::vector<gf::request_handle> hs;
  for (const auto& p : prompts) hs.push_back(eng.generate(greedy(p, 10)));
  for (std::size_t i = 0; i < prompts.size(); ++i) CHECK(hs[i]->output_tokens() == alone[i]);
  CHECK(hs[0]->reused_tokens() == 0);
  for (std::size_t i = 1; i < prompts.size(); ++i) CHECK(hs[i]->reused_tokens() == 20);  // 5 full blocks of the system prompt
  eng.pool().clear_prefix_cache();
  CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
}

TEST_CASE("engine: a shared-prefix hint caches a system prompt for sliding-window models", "[cpu][engine][prefix]") {
  using M = gf::models::tiny_gemma2;
  gf::testing::random_model<M> m(12);
  std::mt19937 rng(6);
  const auto system = random_prompt(rng, 14);  // 3 full blocks of 4 + 2 tokens
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 3; ++i) prompts.push_back(continued(system, rng, 8 + i));
  const auto alone = run_alone<M>(m.w, prompts, 6);
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 1, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 4}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto r = greedy(prompts[i], 6);
    r.shared_prefix = 14;
    auto h = eng.generate(r);
    CHECK(h->output_tokens() == alone[i]);
    CHECK(h->reused_tokens() == (i == 0 ? 0 : 12));
  }
  // Without the hint, the sliding-window model can only reuse whole entries: nothing here.
  naive_engine<M> plain(m.w, c, naive_executor{});
  for (std::size_t i = 0; i < prompts.size(); ++i) CHECK(plain.generate(greedy(prompts[i], 6))->reused_tokens() == 0);
}

TEST_CASE("engine: a chat history continued next turn is not recomputed", "[cpu][engine][prefix]") {
  using M = gf::models::tiny_gemma3;
  gf::testing::random_model<M> m(13);
  std::mt19937 rng(8);
  gf::engine_config c{.limits = {.max_seq_len = 128, .max_batch = 1, .prefill_chunk = 7, .block_tokens = 4, .prefix_slots = 2}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  auto history = random_prompt(rng, 11);
  for (int turn = 0; turn < 3; ++turn) {
    auto h = eng.generate(greedy(history, 5));
    const auto& out = h->output_tokens();
    if (turn > 0) CHECK(h->reused_tokens() >= std::int32_t(history.size()) - 12);  // all but the last partial block(s)
    // Next turn: the history (prompt + reply) plus the user's new message.
    history.insert(history.end(), out.begin(), out.end());
    history = continued(std::move(history), rng, 6);
    // The same conversation recomputed from scratch gives the same reply.
    naive_engine<M> fresh(m.w, c, naive_executor{});
    CHECK(fresh.generate(greedy(std::vector<std::int32_t>(history.begin(), history.end() - 5 - std::ptrdiff_t(out.size())), 5))
              ->output_tokens() == out);
  }
}

TEST_CASE("engine: pool exhaustion with 10x more requests than fit: all complete", "[cpu][engine][scheduler]") {
  using M = gf::models::tiny_gemma1;
  gf::testing::random_model<M> m(5);
  // Blocks for exactly one 24-token request at a time; 10 requests.
  gf::engine_config c{.limits = {.max_seq_len = 32, .max_batch = 4, .prefill_chunk = 8, .block_tokens = 4, .kv_blocks = 6, .prefix_slots = 0}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  std::mt19937 rng(9);
  std::vector<gf::request_handle> hs;
  for (int i = 0; i < 10; ++i) hs.push_back(eng.submit(greedy(random_prompt(rng, 12), 12)));
  step_until_idle(eng, [&] { CHECK(eng.stats().running <= 1); }, 10000);
  for (auto& h : hs) {
    CHECK(h->done());
    CHECK(h->completion_tokens() == 12);
  }
  CHECK(eng.pool().free_blocks() == 6);
}

TEST_CASE("engine: stop conditions, cancellation, and bad requests", "[cpu][engine]") {
  using M = gf::models::tiny_gemma2;
  gf::testing::random_model<M> m(3);
  std::mt19937 rng(1);
  const auto prompt = random_prompt(rng, 9);
  gf::engine_config base{.limits = {.max_seq_len = 32, .max_batch = 2, .prefill_chunk = 4, .block_tokens = 4, .prefix_slots = 0}};
  std::vector<std::int32_t> reference;
  {
    naive_engine<M> eng(m.w, base, naive_executor{});
    reference = eng.generate(greedy(prompt, 8))->output_tokens();
    REQUIRE(reference.size() == 8);
  }
  SECTION("a stop id ends the request with reason stop, the stop token included in the ids") {
    gf::engine_config c = base;
    c.stop_ids = {reference[3]};
    naive_engine<M> eng(m.w, c, naive_executor{});
    auto h = eng.generate(greedy(prompt, 8));
    CHECK(h->reason() == gf::finish_reason::stop);
    const auto first = std::find(reference.begin(), reference.end(), reference[3]) - reference.begin();
    CHECK(h->completion_tokens() == first + 1);
    auto r = greedy(prompt, 8);
    r.stop.ignore_eos = true;
    CHECK(eng.generate(r)->completion_tokens() == 8);
  }
  SECTION("the context end finishes with reason length") {
    naive_engine<M> eng(m.w, base, naive_executor{});
    auto h = eng.generate(greedy(random_prompt(rng, 30), 100));
    CHECK(h->reason() == gf::finish_reason::length);
    CHECK(h->completion_tokens() == 2);
  }
  SECTION("cancel during prefill and while waiting returns every block") {
    naive_engine<M> eng(m.w, base, naive_executor{});
    std::vector<gf::request_handle> hs;
    for (int i = 0; i < 4; ++i) hs.push_back(eng.submit(greedy(random_prompt(rng, 20), 8)));
    eng.step();  // first request admitted and part-way through its prompt
    hs[0]->cancel();
    hs[3]->cancel();  // still waiting
    eng.run_until_idle();
    CHECK(hs[0]->reason() == gf::finish_reason::cancelled);
    CHECK(hs[3]->reason() == gf::finish_reason::cancelled);
    CHECK(hs[3]->completion_tokens() == 0);
    CHECK(hs[1]->reason() == gf::finish_reason::length);
    CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
  }
  SECTION("bad requests get clear errors and the engine keeps serving") {
    naive_engine<M> eng(m.w, base, naive_executor{});
    auto err = [&](gf::generation_request r) {
      try { eng.submit(std::move(r)); } catch (const gf::error& e) { return std::string(e.what()); }
      return std::string();
    };
    CHECK(err(greedy(random_prompt(rng, 32), 4)).find("does not fit the context of 32") != std::string::npos);
    CHECK(err(greedy({}, 4)).find("empty prompt") != std::string::npos);
    CHECK(err(greedy({2, 9999}, 4)).find("outside the vocabulary") != std::string::npos);
    auto bad = greedy(prompt, 4);
    bad.sampling.top_p = 2.0f;
    CHECK(err(bad).find("top_p") != std::string::npos);
    auto text = greedy(prompt, 4);
    text.decode_text = true;
    CHECK(err(text).find("no tokenizer") != std::string::npos);
    CHECK(eng.generate(greedy(prompt, 8))->output_tokens() == reference);
    eng.shutdown();
    CHECK(err(greedy(prompt, 4)).find("shut down") != std::string::npos);
  }
}

TEST_CASE("engine: threaded worker serves concurrent submitters", "[cpu][engine]") {
  using M = gf::models::tiny_gemma1;
  gf::testing::random_model<M> m(21);
  std::mt19937 rng(4);
  std::vector<std::vector<std::int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(random_prompt(rng, 5 + i));
  const auto alone = run_alone<M>(m.w, prompts, 6);
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 3, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 0}, .threaded = true};
  naive_engine<M> eng(m.w, c, naive_executor{});
  std::vector<gf::request_handle> hs(prompts.size());
  std::vector<std::thread> clients;
  for (std::size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] { hs[i] = eng.submit(greedy(prompts[i], 6)); hs[i]->wait(); });
  for (auto& t : clients) t.join();
  for (std::size_t i = 0; i < prompts.size(); ++i) CHECK(hs[i]->output_tokens() == alone[i]);
}

TEST_CASE("engine: prompt scoring returns every position's logits, independent of chunking", "[cpu][engine][scoring]") {
  using M = gf::models::tiny_gemma2;
  gf::testing::random_model<M> m(17);
  std::mt19937 rng(2);
  const auto prompt = random_prompt(rng, 27);
  auto score = [&](int chunk, int logits_rows, int max_tokens) {
    gf::engine_config c{.limits = {.max_seq_len = std::uint32_t(27 + max_tokens), .max_batch = 1, .prefill_chunk = std::uint32_t(chunk),
                                   .block_tokens = 4, .prefix_slots = 0, .logits_rows = std::uint32_t(logits_rows)}};
    naive_engine<M> eng(m.w, c, naive_executor{});
    std::vector<std::vector<float>> rows;
    auto r = greedy(prompt, max_tokens);
    r.on_prompt_logits = [&](std::int32_t pos, const float* l) {
      REQUIRE(pos == std::int32_t(rows.size()));
      rows.emplace_back(l, l + M::vocab);
    };
    auto h = eng.generate(r);
    return std::make_pair(rows, h->output_tokens());
  };
  const auto [a, out_a] = score(27, 27, 0);
  const auto [b, out_b] = score(5, 4, 0);
  const auto [c, out_c] = score(8, 8, 3);
  REQUIRE(a.size() == 27);
  CHECK(a == b);  // bit-identical whatever the chunking
  CHECK(a == c);
  CHECK(out_a.empty());
  REQUIRE(out_c.size() == 3);
  CHECK(out_c[0] == std::int32_t(std::max_element(a.back().begin(), a.back().end()) - a.back().begin()));
}

TEST_CASE("engine: prompt_logits_from scores only the positions from it, with the same bits", "[cpu][engine][scoring]") {
  using M = gf::models::tiny_gemma2;
  gf::testing::random_model<M> m(17);
  std::mt19937 rng(2);
  const auto prompt = random_prompt(rng, 27);
  // Returns the (position, logits) pairs seen, and the logits rows the steps computed in all.
  auto score = [&](int chunk, int from, int max_tokens) {
    gf::engine_config c{.limits = {.max_seq_len = std::uint32_t(27 + max_tokens), .max_batch = 1, .prefill_chunk = std::uint32_t(chunk),
                                   .block_tokens = 4, .prefix_slots = 0, .logits_rows = std::uint32_t(chunk)}};
    naive_engine<M> eng(m.w, c, naive_executor{});
    std::vector<std::pair<std::int32_t, std::vector<float>>> rows;
    auto r = greedy(prompt, max_tokens);
    r.prompt_logits_from = from;
    r.on_prompt_logits = [&](std::int32_t pos, const float* l) { rows.emplace_back(pos, std::vector<float>(l, l + M::vocab)); };
    auto h = eng.generate(r);
    REQUIRE(h->reason() != gf::finish_reason::error);
    return std::make_pair(rows, h->output_tokens());
  };
  const auto [all, out_all] = score(27, 0, 3);
  REQUIRE(all.size() == 27);
  for (int chunk : {27, 8, 5}) {
    for (int from : {1, 13, 16, 26}) {  // inside a chunk, at a chunk boundary (8, 16), the last position
      INFO("chunk " << chunk << " from " << from);
      const auto [got, out] = score(chunk, from, 3);
      REQUIRE(got.size() == std::size_t(27 - from));
      for (std::size_t i = 0; i < got.size(); ++i) {
        CHECK(got[i].first == from + std::int32_t(i));
        CHECK(got[i].second == all[std::size_t(from) + i].second);  // bit-identical
      }
      CHECK(out == out_all);  // the last prompt row still samples the first token
    }
  }
  const auto [none, out_none] = score(8, 40, 2);  // past the prompt: no scored rows, generation unchanged
  CHECK(none.empty());
  CHECK(out_none == std::vector<std::int32_t>(out_all.begin(), out_all.begin() + 2));
}

// OpenAI's n: submit_group runs n sequences over one prompt. The leader prefills it once and
// caches its full blocks; the others attach them and prefill only the tail. Every choice is
// exactly what the same request (same seed) gives alone, and the pool is whole afterwards.
TEMPLATE_TEST_CASE("engine: a group of n sequences shares one prefilled prompt", "[cpu][engine][group]", gf::models::tiny_gemma1,
                   gf::models::tiny_gemma3) {
  using M = TestType;
  gf::testing::random_model<M> m(21);
  std::mt19937 rng(9);
  const auto prompt = random_prompt(rng, 14);  // 3 full blocks of 4 + 2 tokens
  auto sampled = [&](std::uint64_t seed) {
    auto r = greedy(prompt, 8);
    r.sampling.temperature = 50.0f;  // the random model's logits are peaked: flatten them so seeds differ
    r.sampling.seed = seed;
    return r;
  };
  std::vector<std::vector<std::int32_t>> alone;
  for (std::uint64_t s = 0; s < 4; ++s) {
    gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 1, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 0}};
    naive_engine<M> eng(m.w, c, naive_executor{});
    alone.push_back(eng.generate(sampled(100 + s))->output_tokens());
  }
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 4, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 2}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  std::vector<gf::generation_request> rs;
  for (std::uint64_t s = 0; s < 4; ++s) rs.push_back(sampled(100 + s));
  // A request behind the group is admitted only once all four run.
  const auto hs = eng.submit_group(std::move(rs));
  const auto later = eng.submit(greedy(random_prompt(rng, 5), 3));
  bool later_before_group = false;
  step_until_idle(eng, [&] {
    if (later->timings().admitted != std::chrono::steady_clock::time_point{})
      for (const auto& h : hs)
        if (h->timings().admitted == std::chrono::steady_clock::time_point{} || h->timings().admitted > later->timings().admitted)
          later_before_group = true;
  });
  CHECK_FALSE(later_before_group);
  std::set<std::vector<std::int32_t>> distinct;
  for (std::size_t i = 0; i < hs.size(); ++i) {
    INFO("choice " << i);
    CHECK(hs[i]->output_tokens() == alone[i]);
    distinct.insert(hs[i]->output_tokens());
    // The leader computed the prompt; the others reused its 3 full blocks.
    CHECK(hs[i]->reused_tokens() == (i == 0 ? 0 : 12));
  }
  CHECK(distinct.size() > 1);  // different seeds, different choices
  eng.pool().clear_prefix_cache();
  CHECK(eng.pool().free_blocks() == eng.pool().total_blocks());
}

TEST_CASE("engine: a group that cannot fit is refused with its numbers", "[cpu][engine][group]") {
  using M = gf::models::tiny_gemma1;
  gf::testing::random_model<M> m(22);
  std::mt19937 rng(10);
  const auto prompt = random_prompt(rng, 20);
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 4, .prefill_chunk = 5, .block_tokens = 4, .kv_blocks = 24, .prefix_slots = 2}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  auto group = [&](int n, int max_tokens) {
    std::vector<gf::generation_request> rs;
    for (int i = 0; i < n; ++i) rs.push_back(greedy(prompt, max_tokens));
    return rs;
  };
  try {
    (void)eng.submit_group(group(4, 12));  // 4 x 8 blocks of a 24-block pool
    FAIL("no error");
  } catch (const gf::error& e) {
    CHECK(e.code() == gf::errc::capacity);
    CHECK(std::string(e.what()) == "n = 4 sequences of up to 32 tokens need 32 KV blocks (4 x 8 of 4 tokens); the pool has 24");
  }
  try {
    (void)eng.submit_group(group(5, 2));
    FAIL("no error");
  } catch (const gf::error& e) {
    CHECK(e.code() == gf::errc::capacity);
    CHECK(std::string(e.what()).find("at most 4 sequences (max_batch)") != std::string::npos);
  }
  // Three fit: they run.
  const auto hs = eng.submit_group(group(3, 12));
  eng.run_until_idle();
  for (const auto& h : hs) CHECK(h->output_tokens() == hs[0]->output_tokens());  // greedy: all equal
}

// logprobs: every token event carries the sampled token's log-probability and k alternatives,
// most likely first; under greedy decoding the token is the first alternative.
TEST_CASE("engine: token events carry log-probabilities when asked", "[cpu][engine][logprobs]") {
  using M = gf::models::tiny_gemma3;
  gf::testing::random_model<M> m(23);
  std::mt19937 rng(11);
  gf::engine_config c{.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 5, .block_tokens = 4, .prefix_slots = 0}};
  naive_engine<M> eng(m.w, c, naive_executor{});
  auto r = greedy(random_prompt(rng, 9), 6);
  r.logprobs = 3;
  int events = 0;
  r.on_token = [&](const gf::token_event& e) {
    if (e.finished) return;
    ++events;
    REQUIRE(e.logprobs);
    REQUIRE(e.logprobs->n_top == 3);
    CHECK(e.logprobs->top_ids[0] == e.token);
    CHECK(e.logprobs->logprob == e.logprobs->top_logprobs[0]);
    CHECK(e.logprobs->logprob <= 0.0f);
    CHECK(e.logprobs->top_logprobs[0] >= e.logprobs->top_logprobs[1]);
    CHECK(e.logprobs->top_logprobs[1] >= e.logprobs->top_logprobs[2]);
  };
  const auto h = eng.generate(std::move(r));
  CHECK(events == h->completion_tokens());
  CHECK(events == 6);
  // Too many alternatives, and a logit_bias id outside the vocabulary: refused at submission.
  auto bad = greedy(random_prompt(rng, 4), 2);
  bad.logprobs = 21;
  CHECK_THROWS_WITH(eng.submit(bad), "logprobs: at most 20 alternatives per token");
  bad.logprobs = -1;
  bad.sampling.logit_bias = {{M::vocab, 1.0f}};
  CHECK_THROWS_WITH(eng.submit(bad), "logit_bias token id 512 is outside the vocabulary of 512");
}
