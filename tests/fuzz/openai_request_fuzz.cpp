// libFuzzer target: the server's request parsing, HTTP body (JSON) -> openai_request (prompt or
// messages, max_tokens, sampling params, stop strings). examples/serve/openai_request.cpp is
// compiled in directly: it needs nlohmann-json and the headers, not the HTTP transport or the engine.
// The properties checked on every input are in openai_request_properties.hpp (a unit test
// replays the corpus and every past crash under tests/fuzz/regressions/openai_request/ with them).
#include <cstddef>
#include <cstdint>

#include "openai_request_properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (!gemmaforge::serve::testing::check_request_properties(data, size).empty()) __builtin_trap();
  return 0;
}
