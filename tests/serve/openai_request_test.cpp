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
