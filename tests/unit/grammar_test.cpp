// Grammar-constrained decoding: the JSON-Schema compiler, the matcher, the token trie and mask
// (against a brute-force check on a synthetic vocabulary), and sampling under the mask on the real
// Gemma 3 vocabulary until the output ends, checked by an independent validator.
#ifdef GF_HAVE_JSON
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/grammar/grammar_constraint.hpp>
#include <gemmaforge/grammar/json_schema.hpp>
#include <gemmaforge/grammar/matcher.hpp>
#include <gemmaforge/grammar/token_mask.hpp>
#include <gemmaforge/grammar/token_trie.hpp>
#include <gemmaforge/grammar/tool_call_grammar.hpp>

#include "support/json_schema_check.hpp"

namespace gg = gemmaforge::grammar;
using ojson = nlohmann::ordered_json;

namespace {

gg::compiled_grammar compile(const char* schema) { return gg::compile_json_schema(ojson::parse(schema)); }

// The whole text is a complete value of the grammar.
bool accepts(const gg::compiled_grammar& g, std::string_view text) {
  const gg::matcher m(g);
  auto s = m.start();
  return m.feed(s, text) && m.accepting(s);
}
// The text can be continued into a value (a valid prefix).
bool prefix_ok(const gg::compiled_grammar& g, std::string_view text) {
  const gg::matcher m(g);
  auto s = m.start();
  return m.feed(s, text);
}

std::string keyword_of(const char* schema) {
  try {
    compile(schema);
  } catch (const gg::schema_error& e) {
    return e.keyword();
  }
  return "<compiled>";
}

}  // namespace

TEST_CASE("grammar: primitive types", "[grammar][cpu]") {
  const auto str = compile(R"({"type": "string"})");
  CHECK(accepts(str, R"("hello")"));
  CHECK(accepts(str, R"( "esc \" \\ \n \u00e9 é 日本")"));
  CHECK_FALSE(accepts(str, R"("open)"));
  CHECK(prefix_ok(str, R"("open)"));
  CHECK_FALSE(prefix_ok(str, "\"tab\there\""));      // raw control character
  CHECK_FALSE(prefix_ok(str, R"("\x")"));             // bad escape
  CHECK_FALSE(prefix_ok(str, "\"\xC0\xAF\""));        // overlong UTF-8
  CHECK_FALSE(prefix_ok(str, "\"\xED\xA0\x80\""));    // surrogate
  CHECK_FALSE(prefix_ok(str, "42"));

  const auto num = compile(R"({"type": "number"})");
  for (const char* ok : {"0", "-1", "3.25", "1e10", "-0.5E-3", "12"}) CHECK(accepts(num, ok));
  for (const char* bad : {"01", "-", "1.", ".5", "1e", "+1", "1.2.3"}) CHECK_FALSE(accepts(num, bad));

  const auto integer = compile(R"({"type": "integer"})");
  CHECK(accepts(integer, "-42"));
  CHECK_FALSE(prefix_ok(integer, "4.2"));
  CHECK_FALSE(prefix_ok(integer, "4e2"));

  const auto b = compile(R"({"type": "boolean"})");
  CHECK(accepts(b, "true"));
  CHECK(accepts(b, "false"));
  CHECK_FALSE(prefix_ok(b, "tru e"));
  CHECK_FALSE(prefix_ok(b, "null"));

  const auto n = compile(R"({"type": "null"})");
  CHECK(accepts(n, "null"));
  CHECK_FALSE(prefix_ok(n, "nul1"));
}

TEST_CASE("grammar: objects with required and optional properties and nesting", "[grammar][cpu]") {
  const auto g = compile(R"({"type": "object", "additionalProperties": false, "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "nick": {"type": "string"}, "age": {"type": "integer"},
                   "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": false}}})");
  CHECK(accepts(g, R"({"name": "Ada", "age": 36})"));
  CHECK(accepts(g, R"({"name":"Ada","nick":"A","age":36,"address":{"city":"London"}})"));
  CHECK(accepts(g, "{\n  \"name\": \"Ada\",\n  \"age\": 36\n}"));
  CHECK_FALSE(prefix_ok(g, R"({"age": 36)"));              // schema order: name first
  CHECK_FALSE(accepts(g, R"({"name": "Ada"})"));           // age is required
  CHECK_FALSE(prefix_ok(g, R"({"name": "Ada", "x)"));      // no additional properties
  CHECK_FALSE(prefix_ok(g, R"({"name": "Ada", "age": "36")"));
  CHECK_FALSE(prefix_ok(g, R"({"name": "Ada", "age": 36, "address": {})"));  // city required
  CHECK_FALSE(prefix_ok(g, R"({})"));
  CHECK_FALSE(prefix_ok(g, R"({"name": "Ada",})"));

  // Whitespace runs are bounded.
  CHECK(prefix_ok(g, "{" + std::string(gg::max_whitespace_run, ' ')));
  CHECK_FALSE(prefix_ok(g, "{" + std::string(gg::max_whitespace_run + 1, ' ')));

  const auto closed_empty = compile(R"({"type": "object", "properties": {}, "additionalProperties": false})");
  CHECK(accepts(closed_empty, "{}"));
  CHECK_FALSE(prefix_ok(closed_empty, R"({")"));
}

TEST_CASE("grammar: arrays with minItems and maxItems", "[grammar][cpu]") {
  const auto g = compile(R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3})");
  CHECK(accepts(g, "[1]"));
  CHECK(accepts(g, "[1, 2, 3]"));
  CHECK_FALSE(accepts(g, "[]"));
  CHECK_FALSE(prefix_ok(g, "[1,2,3,"));
  CHECK_FALSE(prefix_ok(g, "[1,]"));
  CHECK_FALSE(prefix_ok(g, "[\"a\"]"));
  const auto any_items = compile(R"({"type": "array"})");
  CHECK(accepts(any_items, R"([1, "a", {"b": [null, true]}, []])"));
}

TEST_CASE("grammar: enum and const", "[grammar][cpu]") {
  const auto e = compile(R"({"enum": ["red", "green", 1, 12, null]})");
  for (const char* ok : {R"("red")", R"("green")", "1", "12", "null"}) CHECK(accepts(e, ok));
  CHECK_FALSE(prefix_ok(e, R"("blue")"));
  CHECK_FALSE(prefix_ok(e, "13"));
  CHECK_FALSE(prefix_ok(e, "123"));
  // Inside an array, "1" ends at the comma although "12" extends it.
  const auto arr = compile(R"({"type": "array", "items": {"enum": [1, 12]}})");
  CHECK(accepts(arr, "[1,12,1]"));
  const auto c = compile(R"({"const": {"a": [1, 2]}})");
  CHECK(accepts(c, R"({"a":[1,2]})"));
  CHECK_FALSE(prefix_ok(c, R"({"a": [1,2]})"));  // const is matched as its exact JSON text
}

TEST_CASE("grammar: anyOf and type lists and recursive $ref into $defs", "[grammar][cpu]") {
  const auto nullable = compile(R"({"type": ["string", "null"]})");
  CHECK(accepts(nullable, R"("x")"));
  CHECK(accepts(nullable, "null"));
  CHECK_FALSE(prefix_ok(nullable, "1"));
  const auto any_of = compile(R"({"anyOf": [{"type": "number"}, {"type": "object", "properties": {"a": {"type": "boolean"}},
    "required": ["a"], "additionalProperties": false}]})");
  CHECK(accepts(any_of, "-2.5"));
  CHECK(accepts(any_of, R"({"a": true})"));
  CHECK_FALSE(prefix_ok(any_of, R"("s")"));

  const auto tree = compile(R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "additionalProperties": false,
    "required": ["value", "children"], "properties": {"value": {"type": "integer"},
    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}})");
  CHECK(accepts(tree, R"({"value": 1, "children": [{"value": 2, "children": []}]})"));
  CHECK_FALSE(prefix_ok(tree, R"({"value": 1, "children": [{"value": "x")"));
  // Output nesting is bounded: max_depth frames.
  std::string deep;
  for (int i = 0; i < gg::max_depth; ++i) deep += R"({"value": 1, "children": [)";
  CHECK_FALSE(prefix_ok(tree, deep));
}

TEST_CASE("grammar: json_object mode accepts any object and only objects", "[grammar][cpu]") {
  const auto g = gg::json_object_grammar();
  CHECK(accepts(g, R"({"a": [1, {"b": null}], "c": "d", "e": -1.5e3, "f": true})"));
  CHECK(accepts(g, "{}"));
  CHECK_FALSE(prefix_ok(g, "[1]"));
  CHECK_FALSE(prefix_ok(g, R"({"a" 1})"));
  CHECK_FALSE(prefix_ok(g, R"({a: 1})"));
}

TEST_CASE("grammar: unsupported keywords are named", "[grammar][cpu]") {
  CHECK(keyword_of(R"({"type": "string", "pattern": "^a+$"})") == "pattern");
  CHECK(keyword_of(R"({"type": "string", "format": "date"})") == "format");
  CHECK(keyword_of(R"({"type": "integer", "minimum": 0})") == "minimum");
  CHECK(keyword_of(R"({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}}})") == "maxLength");
  CHECK(keyword_of(R"({"allOf": [{"type": "string"}]})") == "allOf");
  CHECK(keyword_of(R"({"type": "object", "additionalProperties": {"type": "string"}})") == "additionalProperties");
  CHECK(keyword_of(R"({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]})") == "required");
  CHECK(keyword_of(R"({"$ref": "http://example.com/s.json"})") == "$ref");
  CHECK(keyword_of(R"({"type": "date"})") == "type");
  // Alternatives that start alike cannot be told apart by a deterministic matcher.
  CHECK(keyword_of(R"({"anyOf": [{"type": "object"}, {"type": "object", "properties": {}}]})") == "anyOf");
  try {
    compile(R"({"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}})");
    FAIL("compiled");
  } catch (const gg::schema_error& e) {
    CHECK(std::string(e.what()).find("'pattern'") != std::string::npos);
    CHECK(e.path() == "#/properties/a/pattern");
  }
}

TEST_CASE("grammar: a tool call's name selects its arguments' schema", "[grammar][cpu]") {
  const auto weather = compile(R"({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false})");
  const auto add = compile(R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"], "additionalProperties": false})");
  const auto g = gg::tool_call_grammar({{"get_weather", &weather}, {"add", &add}});
  CHECK(accepts(g, R"({"name": "get_weather", "arguments": {"city": "Paris"}})"));
  CHECK(accepts(g, R"({"name": "add", "arguments":{"a": 1, "b": 2}})"));
  CHECK_FALSE(prefix_ok(g, R"({"name": "add", "arguments": {"city")"));
  CHECK_FALSE(prefix_ok(g, R"({"name": "get_weather", "arguments": {"a")"));
  CHECK_FALSE(prefix_ok(g, R"({"name": "sub")"));
  CHECK_FALSE(accepts(g, R"({"name": "add", "arguments": {"a": 1, "b": 2})"));
  const gg::framed_matcher fenced(g, "```tool_call\n", "\n```");
  auto s = fenced.start();
  REQUIRE(fenced.feed_all(s, "```tool_call\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 22}}\n```"));
  CHECK(fenced.complete(s));
}

// ------------------------------------------------------------------- the mask, by brute force
namespace {

std::vector<std::string> synthetic_vocab(std::mt19937& rng) {
  // Short strings over the bytes JSON needs, plus every single byte of that alphabet, a few
  // multi-byte characters and an empty (special) token.
  const std::string alphabet = "{}[]:,\" \n\\abnrtuelsfx0123456789-.eE+";
  std::vector<std::string> v = {"", "\xC3\xA9", "\xC3", "\xA9", "\xE6\x97\xA5", "true", "false", "null", "\"name\"", "\": \"", "\",\n"};
  for (char c : alphabet) v.emplace_back(1, c);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1), len(2, 6);
  for (int i = 0; i < 600; ++i) {
    std::string s;
    for (std::size_t k = len(rng); k > 0; --k) s += alphabet[pick(rng)];
    v.push_back(s);
  }
  return v;
}

}  // namespace

TEST_CASE("grammar: the trie mask equals a brute-force check of every token", "[grammar][cpu]") {
  std::mt19937 rng(7);
  const auto vocab = synthetic_vocab(rng);
  const gg::token_trie trie(vocab);
  for (const char* schema : {R"({"type": "object", "additionalProperties": false, "required": ["name", "n"],
                                 "properties": {"name": {"type": "string"}, "n": {"type": "array", "items": {"type": "number"}},
                                                "e": {"enum": ["a", "ab", true]}}})",
                             R"({"type": ["string", "null"]})", "{}"}) {
    const auto g = gg::compile_json_schema(ojson::parse(schema));
    const gg::matcher m(g);
    gg::mask_work<> w(trie);
    for (int run = 0; run < 20; ++run) {
      auto s = m.start();
      for (int step = 0; step < 40 && !gg::matcher::complete(s); ++step) {
        gg::allowed_tokens(m, s, trie, w);
        std::vector<std::int32_t> allowed;
        for (std::int32_t id = 0; id < std::int32_t(vocab.size()); ++id) {
          auto t = s;
          const bool brute = !vocab[std::size_t(id)].empty() && m.feed(t, vocab[std::size_t(id)]);
          const bool masked = (w.bits[std::size_t(id) / 64] >> (id % 64)) & 1;
          if (brute != masked) FAIL_CHECK("token " << id << " '" << vocab[std::size_t(id)] << "': brute " << brute << " mask " << masked);
          if (masked) allowed.push_back(id);
        }
        if (allowed.empty()) break;
        const auto id = allowed[std::uniform_int_distribution<std::size_t>(0, allowed.size() - 1)(rng)];
        REQUIRE(m.feed(s, vocab[std::size_t(id)]));
      }
    }
  }
}

TEST_CASE("grammar: apply_mask keeps end ids only where the output may end", "[grammar][cpu]") {
  const std::vector<std::string> vocab = {"", "{", "}", "\"a\"", ":", "1", ""};
  const gg::token_trie trie(vocab);
  const auto g = gg::json_object_grammar();
  gg::framed_matcher m(g);
  gg::mask_work<gg::framed_state> w(trie);
  const std::int32_t ends[] = {0, 6};
  auto s = m.start();
  std::vector<float> logits(vocab.size(), 1.0f);
  gg::allowed_tokens(m, s, trie, w);
  gg::apply_mask(logits.data(), std::int32_t(vocab.size()), w, m.accepting(s), ends);
  CHECK(logits[1] == 1.0f);
  CHECK(std::isinf(logits[0]));
  CHECK(std::isinf(logits[2]));
  CHECK(std::isinf(logits[6]));
  REQUIRE(m.feed_all(s, "{}"));
  CHECK(m.complete(s));
  std::fill(logits.begin(), logits.end(), 1.0f);
  gg::allowed_tokens(m, s, trie, w);
  gg::apply_mask(logits.data(), std::int32_t(vocab.size()), w, m.accepting(s), ends);
  for (std::size_t i = 1; i < 6; ++i) CHECK(std::isinf(logits[i]));
  CHECK(logits[0] == 1.0f);
  CHECK(logits[6] == 1.0f);
}

TEST_CASE("grammar: framed matcher for tool calls with opener and closer or free text first", "[grammar][cpu]") {
  const auto g = compile(R"({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"], "additionalProperties": false})");
  const gg::framed_matcher fenced(g, "```json\n", "\n```");
  auto s = fenced.start();
  CHECK_FALSE(fenced.accepting(s));
  REQUIRE(fenced.feed_all(s, "```json\n{\"x\": 12}\n```"));
  CHECK(fenced.complete(s));
  s = fenced.start();
  CHECK_FALSE(fenced.feed_all(s, "Sure! ```json"));

  const gg::framed_matcher maybe(g, "```json\n", "\n```", true);
  s = maybe.start();
  REQUIRE(maybe.feed_all(s, "I will call it. `` ````json\n"));
  CHECK(maybe.in_call(s));
  CHECK_FALSE(maybe.feed_all(s, "{\"y\""));
  s = maybe.start();
  REQUIRE(maybe.feed_all(s, "no call at all"));
  CHECK(maybe.accepting(s));
  CHECK(maybe.unconstrained(s));
}

#ifdef GF_HAVE_SENTENCEPIECE
#include <gemmaforge/tokenizer/tokenizer.hpp>

#include "unit/io_test_support.hpp"

namespace {
const gemmaforge::tokenizer& real_vocab_tokenizer() {
  static const gemmaforge::tokenizer t = gemmaforge::tokenizer::load(gf_test::model_path());
  return t;
}
std::shared_ptr<const gg::token_trie> real_trie() {
  static const auto trie = [] {
    const auto& tok = real_vocab_tokenizer();
    std::vector<std::string> bytes(std::size_t(tok.vocab_size()));
    for (int id = 0; id < tok.vocab_size(); ++id) bytes[std::size_t(id)] = std::string(tok.token_bytes(id));
    return std::make_shared<const gg::token_trie>(bytes);
  }();
  return trie;
}
}  // namespace

TEST_CASE("grammar: random sampling under the mask on the Gemma 3 vocabulary always validates", "[grammar][model]") {
  const auto& tok = real_vocab_tokenizer();
  const auto trie = real_trie();
  REQUIRE(trie->vocab() == 262144);
  const std::int32_t ends[] = {tok.eos_id(), tok.end_of_turn_id()};
  const char* schemas[] = {
      R"({"type": "object", "additionalProperties": false, "required": ["name", "age", "tags", "kind", "ok"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                         "kind": {"enum": ["cat", "dog"]}, "ok": {"type": ["boolean", "null"]}}})",
      R"({"$defs": {"n": {"type": "object", "additionalProperties": false, "required": ["v", "kids"],
          "properties": {"v": {"type": "number"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/n"}, "maxItems": 2}}}},
          "$ref": "#/$defs/n"})",
      "{}"};
  std::mt19937 rng(1234);
  std::vector<float> logits(std::size_t(trie->vocab()));
  for (const char* schema_text : schemas) {
    const auto schema = ojson::parse(schema_text);
    const auto g = std::make_shared<const gg::compiled_grammar>(
        std::string(schema_text) == "{}" ? gg::json_object_grammar() : gg::compile_json_schema(schema));
    for (int run = 0; run < 6; ++run) {
      gg::grammar_constraint c(g, trie);
      std::string out;
      bool ended = false;
      for (int step = 0; step < 400 && !ended; ++step) {
        // Random logits, biased towards short tokens and closing punctuation so outputs end.
        std::normal_distribution<float> nd(0.0f, 2.0f);
        for (auto& l : logits) l = nd(rng);
        for (const char* closer : {"}", "]", "\"", "\",", "}]", " \"", "1"}) {
          const auto ids = tok.encode(closer, {.add_bos = false, .parse_special = false});
          if (ids.size() == 1) logits[std::size_t(ids[0])] += 4.0f + float(step) / 40.0f;
        }
        for (auto e : ends) logits[std::size_t(e)] += 8.0f;
        c.mask(logits.data(), trie->vocab(), ends);
        double total = 0;
        std::vector<double> p(logits.size());
        float mx = -std::numeric_limits<float>::infinity();
        for (float l : logits) mx = std::max(mx, l);
        REQUIRE(std::isfinite(mx));
        for (std::size_t i = 0; i < logits.size(); ++i) total += p[i] = std::isinf(logits[i]) ? 0.0 : std::exp(double(logits[i] - mx));
        double u = std::uniform_real_distribution<double>(0, total)(rng);
        std::int32_t id = 0;
        for (; id < std::int32_t(p.size()) - 1; ++id)
          if ((u -= p[std::size_t(id)]) <= 0 && p[std::size_t(id)] > 0) break;
        REQUIRE(p[std::size_t(id)] > 0);
        if (id == ends[0] || id == ends[1]) {
          ended = true;
          break;
        }
        c.accept(id);
        REQUIRE_FALSE(c.broken());
        out += tok.token_bytes(id);
      }
      INFO("schema " << schema_text << "\noutput " << out);
      REQUIRE(ended);
      const auto v = nlohmann::json::parse(out);
      CHECK(gemmaforge::testing::schema_violation(v, nlohmann::json::parse(schema_text), nlohmann::json::parse(schema_text)).empty());
      if (std::string(schema_text) == "{}") CHECK(v.is_object());
    }
  }
}
#endif
#endif
