// Cost of grammar-constrained decoding per token, against a decode step, on the real Gemma 3 270M
// (vocabulary of 262,144 tokens, CPU backend):
//   BM_decode_step/<threads>         baseline: one decode step at batch 1 (us_per_token)
//   BM_mask_state/<state>            one mask (trie walk + applying it to a 262,144-float row) from a
//                                    fixed matcher state: 0 start, 1 inside a string, 2 a value
//                                    after a key, 3 inside a number, 4 json_object inside a key
//   BM_mask_document                 the mean over every step of whole documents generated under
//                                    the mask with random logits (what a request pays per token)
// docs/benchmarks.md reports mask us_per_token / decode us_per_token.
#include <benchmark/benchmark.h>

#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/grammar/grammar_constraint.hpp>
#include <gemmaforge/grammar/json_schema.hpp>
#include <gemmaforge/io/default_model.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/model/gemma3.hpp>
#include <gemmaforge/runtime/engine.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

namespace gf = gemmaforge;
namespace gg = gemmaforge::grammar;
using M = gf::models::gemma_3_270m;

namespace {

// A realistic extraction schema: strings, an enum, numbers, a nullable field, an array of objects.
constexpr const char* schema_text = R"({
  "type": "object", "additionalProperties": false,
  "required": ["name", "age", "email", "role", "skills", "address"],
  "properties": {
    "name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": ["string", "null"]},
    "role": {"enum": ["engineer", "manager", "designer", "other"]},
    "skills": {"type": "array", "maxItems": 4, "items": {"type": "object", "additionalProperties": false,
               "required": ["skill", "years"], "properties": {"skill": {"type": "string"}, "years": {"type": "number"}}}},
    "address": {"type": "object", "additionalProperties": false, "required": ["city", "zip"],
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}}}})";

const gf::tokenizer& tok() {
  static const gf::tokenizer t = gf::tokenizer::load(gf::default_model_path());
  return t;
}

double trie_build_s = 0;
const std::shared_ptr<const gg::token_trie>& trie() {
  static const auto t = [] {
    std::vector<std::string> bytes(std::size_t(tok().vocab_size()));
    for (int id = 0; id < tok().vocab_size(); ++id) bytes[std::size_t(id)] = std::string(tok().token_bytes(id));
    const auto t0 = std::chrono::steady_clock::now();
    auto tr = std::make_shared<const gg::token_trie>(bytes);
    trie_build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return tr;
  }();
  return t;
}

const gg::compiled_grammar& schema_grammar() {
  static const auto g = gg::compile_json_schema(nlohmann::ordered_json::parse(schema_text));
  return g;
}

void BM_decode_step(benchmark::State& st) {
  static const auto m = gf::load_model<M>(gf::default_model_path(), {.prefault = true, .progress = false});
  gf::engine_config c;
  c.limits.max_seq_len = 512;
  c.limits.max_batch = 1;
  c.limits.prefill_chunk = 64;
  c.limits.prefix_slots = 0;
  gf::cpu::executor_options o;
  o.threads = int(st.range(0));
  gf::basic_engine<M, gf::cpu::cpu_executor, gf::bf16> eng(m.weights(), c, gf::cpu::cpu_executor(o));
  constexpr int n_tokens = 32;
  double decode_s = 0;
  std::int64_t tokens = 0;
  for (auto _ : st) {
    gf::generation_request r;
    r.prompt = {2, 1000, 2000, 3000, 4000, 5000, 6000, 7000};
    r.stop.max_tokens = n_tokens + 1;
    r.stop.ignore_eos = true;
    r.decode_text = false;
    auto h = eng.generate(std::move(r));
    decode_s += h->timings().decode_seconds();
    tokens += n_tokens;
  }
  st.counters["us_per_token"] = decode_s / double(tokens) * 1e6;
}

void BM_mask_state(benchmark::State& st) {
  const auto& t = *trie();
  const bool object_mode = st.range(0) == 4;
  static const auto any_object = gg::json_object_grammar();
  const auto& g = object_mode ? any_object : schema_grammar();
  const char* prefixes[] = {"", R"({"name": "Ada Lov)", R"({"name": "Ada", "age":)", R"({"name": "Ada", "age": 3)", R"({"ke)"};
  const gg::framed_matcher m(g);
  auto s = m.start();
  if (!m.feed_all(s, prefixes[st.range(0)])) {
    st.SkipWithError("prefix rejected");
    return;
  }
  gg::mask_work<gg::framed_state> w(t);
  std::vector<float> logits(std::size_t(t.vocab()), 0.5f);
  const std::int32_t ends[] = {tok().eos_id(), tok().end_of_turn_id()};
  std::size_t visited = 0, allowed = 0;
  for (auto _ : st) {
    visited = gg::allowed_tokens(m, s, t, w);
    gg::apply_mask(logits.data(), t.vocab(), w, m.accepting(s), ends);
    benchmark::DoNotOptimize(logits.data());
  }
  for (auto b : w.bits) allowed += std::size_t(__builtin_popcountll(b));
  st.counters["nodes_visited"] = double(visited);
  st.counters["tokens_allowed"] = double(allowed);
}

void BM_mask_document(benchmark::State& st) {
  const auto& t = *trie();
  const auto g = std::make_shared<const gg::compiled_grammar>(schema_grammar());
  const std::int32_t ends[] = {tok().eos_id(), tok().end_of_turn_id()};
  std::mt19937 rng(42);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> logits(std::size_t(t.vocab()));
  double mask_s = 0;
  std::int64_t steps = 0, documents = 0;
  for (auto _ : st) {
    gg::grammar_constraint c(g, trie());
    for (int step = 0; step < 300; ++step) {
      st.PauseTiming();
      for (auto& l : logits) l = nd(rng);
      for (auto e : ends) logits[std::size_t(e)] += 6.0f;
      st.ResumeTiming();
      const auto t0 = std::chrono::steady_clock::now();
      c.mask(logits.data(), t.vocab(), ends);
      mask_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++steps;
      // Greedy on random logits: a random walk through valid documents.
      std::int32_t best = 0;
      for (std::int32_t i = 1; i < t.vocab(); ++i)
        if (logits[std::size_t(i)] > logits[std::size_t(best)]) best = i;
      if (best == ends[0] || best == ends[1]) break;
      c.accept(best);
    }
    ++documents;
  }
  st.counters["us_per_token"] = mask_s / double(steps) * 1e6;
  st.counters["tokens_per_doc"] = double(steps) / double(documents);
  st.counters["trie_MiB"] = double(t.bytes()) / (1 << 20);
  st.counters["trie_build_s"] = trie_build_s;
  st.counters["request_KiB"] = double(gg::grammar_constraint::request_bytes(t)) / 1024;
}

}  // namespace

BENCHMARK(BM_decode_step)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_mask_state)->DenseRange(0, 4)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_mask_document)->Unit(benchmark::kMillisecond)->Iterations(10);

BENCHMARK_MAIN();
