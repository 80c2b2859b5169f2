// The server's request parser without the server: every seed of the fuzz corpus and every input
// that once broke it (tests/fuzz/regressions/openai_request/) must satisfy the fuzz target's
// properties, and the past crashes must now get their 400 with the documented message.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/openai_request_properties.hpp"
#include "openai_request.hpp"

namespace fs = std::filesystem;
namespace gs = gemmaforge::serve;

namespace {

std::vector<std::uint8_t> read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

gs::api_error parse_error(gs::api_kind kind, std::string_view body) {
  try {
    (void)gs::parse_openai_request(kind, body);
  } catch (const gs::api_error& e) {
    return e;
  }
  FAIL("no error for " << body);
  return gs::invalid_request("unreachable");
}

}  // namespace

TEST_CASE("openai request parser: corpus and past crashes keep the fuzz properties", "[cpu][serve][fuzz]") {
  int files = 0;
  for (const char* dir : {"fuzz/corpus/openai_request", "fuzz/regressions/openai_request"}) {
    const fs::path d = fs::path(GF_TEST_DATA_DIR) / dir;
    REQUIRE(fs::is_directory(d));
    for (const auto& e : fs::directory_iterator(d)) {
      const auto bytes = read_all(e.path());
      INFO(e.path().string());
      const std::string broken = gs::testing::check_request_properties(bytes.data(), bytes.size());
      INFO("broken property: " << broken);
      CHECK(broken.empty());
      ++files;
    }
  }
  CHECK(files >= 7);
}

TEST_CASE("openai request parser: numbers beyond double's range are a 400, not a 500", "[cpu][serve]") {
  // nlohmann's parser throws out_of_range.406 (not parse_error) for 1e400: found by the fuzzer,
  // it used to escape to the server's exception handler as "500 internal error".
  for (const char* body : {R"({"prompt": "a", "max_tokens": 1e400})", R"({"prompt": "a", "temperature": -1.5e309})",
                           R"({"prompt": [2, 1e999]})"}) {
    const gs::api_error e = parse_error(gs::api_kind::completion, body);
    CHECK(e.status == 400);
    CHECK(e.code == "invalid_json");
    CHECK(std::string(e.what()).find("request body is not valid JSON") != std::string::npos);
    CHECK(std::string(e.what()).find("number overflow") != std::string::npos);
  }
  // In range but not an integer, or an integer beyond 64 bits (which the JSON parser reads as a
  // double): the field's own message.
  CHECK(parse_error(gs::api_kind::completion, R"({"prompt": "a", "max_tokens": 1e300})").param == "max_tokens");
  const gs::api_error seed = parse_error(gs::api_kind::completion, R"({"prompt": "a", "seed": 99999999999999999999})");
  CHECK(seed.status == 400);
  CHECK(seed.param == "seed");
  CHECK(std::string(seed.what()) == "'seed' must be an integer, got a floating-point number");
  // The seed range is int64 (issue 20, D10): 2^63 and above are refused, never clamped into one
  // seed; the range's ends and negative seeds (two's complement) are seeds.
  for (const char* body : {R"({"prompt": "a", "seed": 18446744073709551615})", R"({"prompt": "a", "seed": 9223372036854775808})"}) {
    const gs::api_error e = parse_error(gs::api_kind::completion, body);
    CHECK(e.status == 400);
    CHECK(e.param == "seed");
  }
  CHECK(gs::parse_openai_request(gs::api_kind::completion, R"({"prompt": "a", "seed": 9223372036854775807})").sampling.seed ==
        9223372036854775807u);
  CHECK(gs::parse_openai_request(gs::api_kind::completion, R"({"prompt": "a", "seed": -1})").sampling.seed == 18446744073709551615u);
}

TEST_CASE("openai_request: JSON depth and NUL bytes are bounded before the tree is built") {
  // D5: nesting past max_json_depth (64 levels, the top-level object included) is refused.
  const std::string ok = R"({"prompt": "a", "x": )" + std::string(63, '[') + std::string(63, ']') + "}";
  CHECK_NOTHROW(gs::parse_openai_request(gs::api_kind::completion, ok));
  const std::string deep = R"({"prompt": "a", "x": )" + std::string(64, '[') + std::string(64, ']') + "}";
  const gs::api_error e = parse_error(gs::api_kind::completion, deep);
  CHECK(e.status == 400);
  CHECK(e.code == "invalid_json");
  const std::string huge = R"({"prompt": )" + std::string(1000000, '[');  // unterminated, too
  CHECK(parse_error(gs::api_kind::completion, huge).code == "invalid_json");
  // D11: a raw NUL ends nlohmann's input; it is refused wherever it is.
  using namespace std::string_literals;
  CHECK(parse_error(gs::api_kind::completion, "{\"prompt\":\"a\"}\0garbage"s).code == "invalid_json");
  CHECK(parse_error(gs::api_kind::completion, "{\"prompt\":\"a\0b\"}"s).code == "invalid_json");
}

TEST_CASE("openai_request: n, best_of, logprobs, echo and logit_bias (issue 17)", "[cpu][serve]") {
  using gs::api_kind;
  const auto c = gs::parse_openai_request(api_kind::completion,
                                          R"({"prompt": "a", "n": 3, "best_of": 5, "logprobs": 2, "echo": true,
                                              "logit_bias": {"17": -100, "5": 2.5}})");
  CHECK(c.n == 3);
  CHECK(c.best_of == 5);
  CHECK(c.logprobs == 2);
  CHECK(c.echo);
  REQUIRE(c.sampling.logit_bias.size() == 2);
  const auto ch = gs::parse_openai_request(api_kind::chat,
                                           R"({"messages": [{"role": "user", "content": "hi"}], "n": 2, "logprobs": true, "top_logprobs": 20})");
  CHECK(ch.n == 2);
  CHECK(ch.best_of == 2);
  CHECK(ch.logprobs == 20);
  CHECK(gs::parse_openai_request(api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true})").logprobs == 0);
  CHECK(gs::parse_openai_request(api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": false})").logprobs == -1);
  CHECK(gs::parse_openai_request(api_kind::completion, R"({"prompt": "a", "logprobs": 0})").logprobs == 0);
  CHECK(gs::parse_openai_request(api_kind::completion, R"({"prompt": "a", "logprobs": null, "n": 1})").logprobs == -1);

  struct bad_case {
    api_kind kind;
    const char* body;
    const char* param;
    const char* message;
  };
  const bad_case bad[] = {
      {api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 21})", "top_logprobs",
       "top_logprobs must be in [0, 20], got 21"},
      {api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2})", "top_logprobs",
       "top_logprobs needs logprobs: true"},
      {api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": 3})", "logprobs",
       "'logprobs' must be a boolean, got an integer"},
      {api_kind::completion, R"({"prompt": "a", "logprobs": 6})", "logprobs", "logprobs must be in [0, 5], got 6"},
      {api_kind::completion, R"({"prompt": "a", "n": 0})", "n", "n must be in [1, 16], got 0"},
      {api_kind::completion, R"({"prompt": "a", "n": 17})", "n", "n must be in [1, 16], got 17"},
      {api_kind::completion, R"({"prompt": "a", "n": 3, "best_of": 2})", "best_of", "best_of must be in [n, 16] (n = 3), got 2"},
      {api_kind::completion, R"({"prompt": "a", "n": 1, "best_of": 2, "stream": true})", "best_of",
       "best_of > n cannot be streamed: the best choices are known only at the end"},
      {api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}], "best_of": 2})", "best_of",
       "best_of is a parameter of /v1/completions only; use n for chat"},
      {api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}], "echo": true})", "echo",
       "echo is a parameter of /v1/completions only"},
      {api_kind::completion, R"({"prompt": "a", "logit_bias": {"12": 101}})", "logit_bias",
       "logit_bias for token 12 is 101: a bias must be in [-100, 100]"},
      {api_kind::completion, R"({"prompt": "a", "logit_bias": {"-3": 1}})", "logit_bias",
       "'logit_bias' key '-3' is not a token id (a non-negative integer)"},
      {api_kind::completion, R"({"prompt": "a", "logit_bias": {"abc": 1}})", "logit_bias",
       "'logit_bias' key 'abc' is not a token id (a non-negative integer)"},
      {api_kind::completion, R"({"prompt": "a", "logit_bias": {"99999999999": 1}})", "logit_bias",
       "'logit_bias' key '99999999999' is not a token id (a non-negative integer)"},
      {api_kind::completion, R"({"prompt": "a", "logit_bias": {"5": "x"}})", "logit_bias",
       "logit_bias for token 5 must be a number, got a string"},
      {api_kind::completion, R"({"prompt": "a", "logit_bias": [1, 2]})", "logit_bias",
       "'logit_bias' must be an object mapping token ids to biases, got an array"},
  };
  for (const auto& b : bad) {
    INFO(b.body);
    const gs::api_error e = parse_error(b.kind, b.body);
    CHECK(e.status == 400);
    CHECK(e.param == b.param);
    CHECK(std::string(e.what()) == b.message);
  }
}
