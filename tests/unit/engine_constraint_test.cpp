// The engine's token_constraint hook (runtime/token_constraint.hpp) on a random tiny model: the
// mask is applied to the sequence's own row before sampling (greedy and sampled), the sampled
// token is reported back, an end id ends the request once the grammar is complete, and a
// batch mixes constrained and free requests without one affecting the other.
#ifdef GF_HAVE_JSON
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/grammar/grammar_constraint.hpp>
#include <gemmaforge/grammar/json_schema.hpp>
#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/runtime/engine.hpp>

#include "support/naive_executor.hpp"
#include "support/random_model.hpp"
#include "support/requests.hpp"

namespace gf = gemmaforge;
namespace gg = gemmaforge::grammar;

namespace {
using M = gf::models::tiny_gemma3;
constexpr std::int32_t eos = 1;

// Token bytes for the tiny model's 512 ids: 0..2 special, then JSON pieces, then filler text.
std::vector<std::string> tiny_vocab() {
  std::vector<std::string> v(M::vocab);
  const char* pieces[] = {"{", "}", "[", "]", ",", ":", "\"", " ", "\"a\"", "\"b\"", ": ", ", ", "1", "2", "0", "-", ".",
                          "true", "false", "null", "x", "yz", "\"}", "\n", "\\", "n", "\"a\": ", "\"b\": [", "a", "b", "t", "r", "u", "e"};
  std::size_t i = 3;
  for (const char* p : pieces) v[i++] = p;
  for (; i < v.size(); ++i) v[i] = std::to_string(i).insert(0, 1, 'w');  // not "w" + std::string&&: GCC 12 -Wrestrict
  return v;
}

class only_token final : public gf::token_constraint {
 public:
  explicit only_token(std::int32_t t) : t_(t) {}
  void mask(float* logits, std::int32_t vocab, std::span<const std::int32_t>) override {
    for (std::int32_t i = 0; i < vocab; ++i)
      if (i != t_) logits[i] = -std::numeric_limits<float>::infinity();
  }
  void accept(std::int32_t token) override { seen.push_back(token); }
  std::vector<std::int32_t> seen;

 private:
  std::int32_t t_;
};
}  // namespace

TEST_CASE("engine: a token constraint masks the row before sampling and sees each token", "[cpu][engine][grammar]") {
  gf::testing::random_model<M> m(11);
  gf::engine_config c;
  c.limits = {.max_seq_len = 64, .max_batch = 2, .prefill_chunk = 8, .block_tokens = 4, .prefix_slots = 0};
  gf::basic_engine<M, gf::testing::naive_executor, float> eng(m.w, c, gf::testing::naive_executor{});
  auto con = std::make_shared<only_token>(77);
  auto r = gf::testing::greedy({2, 5, 9, 13}, 6);
  r.sampling.temperature = 1.0f;
  r.sampling.seed = 3;
  r.constraint = con;
  auto free_r = gf::testing::greedy({2, 5, 9, 13}, 6);
  auto h1 = eng.submit(std::move(r));
  auto h2 = eng.submit(std::move(free_r));
  eng.run_until_idle();
  CHECK(h1->output_tokens() == std::vector<std::int32_t>(6, 77));
  CHECK(con->seen == std::vector<std::int32_t>(6, 77));
  CHECK(h2->output_tokens() != std::vector<std::int32_t>(6, 77));
}

TEST_CASE("engine: a grammar constraint gives valid JSON and ends at the end id", "[cpu][engine][grammar]") {
  gf::testing::random_model<M> m(5);
  const auto trie = std::make_shared<const gg::token_trie>(tiny_vocab());
  const auto schema = nlohmann::ordered_json::parse(
      R"({"type": "object", "additionalProperties": false, "required": ["a", "b"],
          "properties": {"a": {"enum": [1, 2, true]}, "b": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}}})");
  const auto g = std::make_shared<const gg::compiled_grammar>(gg::compile_json_schema(schema));
  for (float temperature : {0.0f, 1.0f}) {
    gf::engine_config c;
    c.limits = {.max_seq_len = 256, .max_batch = 1, .prefill_chunk = 8, .block_tokens = 4, .prefix_slots = 0};
    c.stop_ids = {eos};
    gf::basic_engine<M, gf::testing::naive_executor, float> eng(m.w, c, gf::testing::naive_executor{});
    auto con = std::make_shared<gg::grammar_constraint>(g, trie);
    auto r = gf::testing::greedy({2, 40, 41}, 250);
    r.sampling.temperature = temperature;
    r.sampling.seed = 9;
    r.constraint = con;
    const auto h = eng.generate(std::move(r));
    std::string text;
    for (auto t : h->output_tokens()) text += trie->token_bytes(t);
    INFO("temperature " << temperature << ": " << text);
    REQUIRE(h->reason() == gf::finish_reason::stop);
    CHECK(h->output_tokens().back() == eos);
    CHECK(con->complete());
    CHECK_FALSE(con->broken());
    const auto v = nlohmann::json::parse(text);
    CHECK(v.size() == 2);
    CHECK(v["b"].is_array());
  }
}
#endif
