#pragma once
// What must hold for any request body given to the server's parser (examples/serve/
// openai_request.cpp), shared by the fuzz target (tests/fuzz/openai_request_fuzz.cpp) and the unit
// test that replays its corpus and past crashes (tests/serve/openai_request_test.cpp).
//  - parsing either succeeds or throws api_error 400 invalid_request_error; any other exception
//    (a nlohmann type_error or out_of_range, std::out_of_range, ...) would reach the server's
//    generic 500 path, the answer for faults of the server, not of the client;
//  - the error body the server would send is valid JSON whatever bytes the message quotes;
//  - a request that parses carries sampling params that pass validate() (the engine checks them
//    again at submit), max_tokens >= 1 when given, at most max_stop_strings non-empty stops,
//    known roles and a non-empty prompt or message list.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <gemmaforge/runtime/sampling_params.hpp>

#include "openai_request.hpp"

namespace gemmaforge::serve::testing {

// The first byte picks the endpoint (even: /v1/completions, odd: /v1/chat/completions), the rest
// is the body. Returns "" when every property holds, else what broke.
inline std::string check_request_properties(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  const auto kind = (data[0] & 1) ? api_kind::chat : api_kind::completion;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const openai_request r = parse_openai_request(kind, body);
    try {
      validate(r.sampling);
    } catch (const error& e) {
      return std::string("accepted sampling params the engine refuses: ") + e.what();
    }
    if (r.max_tokens && *r.max_tokens < 1) return "accepted max_tokens < 1";
    if (r.stop.size() > max_stop_strings) return "accepted too many stop strings";
    for (const auto& s : r.stop)
      if (s.empty()) return "accepted an empty stop string";
    if (kind == api_kind::chat) {
      if (r.messages.empty()) return "accepted an empty message list";
      for (const auto& m : r.messages)
        if (m.role != "system" && m.role != "user" && m.role != "assistant") return "accepted role " + m.role;
    } else if (r.prompt_is_ids) {
      if (r.prompt_ids.empty()) return "accepted an empty id prompt";
      for (auto id : r.prompt_ids)
        if (id < 0) return "accepted a negative token id";
    }
  } catch (const api_error& e) {
    if (e.status != 400 || e.type != "invalid_request_error")
      return "api_error " + std::to_string(e.status) + " " + e.type + ": " + e.what();
    if (!nlohmann::json::accept(error_body(e))) return "error body is not valid JSON";
  } catch (const std::exception& e) {
    return std::string("exception other than api_error: ") + e.what();
  }
  return {};
}

}  // namespace gemmaforge::serve::testing
