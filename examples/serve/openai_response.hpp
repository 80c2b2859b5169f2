#pragma once
// OpenAI response shapes: the non-streamed bodies, the streamed chunks, the model list.
//   completion:  {"id":"cmpl-…","object":"text_completion","created":…,"model":…,
//                 "choices":[{"index":0,"text":…,"logprobs":null,"finish_reason":"stop"}],"usage":{…}}
//   chat:        {"id":"chatcmpl-…","object":"chat.completion",…,
//                 "choices":[{"index":0,"message":{"role":"assistant","content":…},"logprobs":null,"finish_reason":…}],"usage":{…}}
//   chunks:      the same with "object":"text_completion" / "chat.completion.chunk", the text as
//                "text" / "delta":{"content":…}, finish_reason null until the last chunk.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "openai_request.hpp"

namespace gemmaforge::serve {

struct response_meta {
  api_kind kind = api_kind::completion;
  std::string id;         // cmpl-… / chatcmpl-…
  std::int64_t created = 0;
  std::string model;
};

struct usage_counts {
  std::int32_t prompt = 0, completion = 0, cached = 0;
};

response_meta make_meta(api_kind kind, std::string model);

std::string completion_body(const response_meta& m, std::string_view text, std::string_view finish_reason, const usage_counts& u);

// One choice of a response with n choices (and logprobs, when asked: logprobs_json.hpp).
struct choice_out {
  std::int32_t index = 0;
  std::string text;
  std::string finish_reason;
  nlohmann::ordered_json logprobs;  // null unless logprobs were asked
};
std::string completion_body(const response_meta& m, const std::vector<choice_out>& choices, const usage_counts& u);
// A streamed chunk of choice `index` (logprobs: the tokens this chunk covers, or null).
std::string chunk_body(const response_meta& m, std::int32_t index, std::string_view text, std::string_view finish_reason, bool role,
                       const nlohmann::ordered_json* logprobs);

// One streamed chunk: text (may be empty), the role opener (chat's first chunk), or the last
// chunk carrying finish_reason (finish_reason empty = null).
std::string chunk_body(const response_meta& m, std::string_view text, std::string_view finish_reason = {}, bool role = false);
// stream_options.include_usage: a last chunk with empty choices and the usage.
std::string usage_chunk_body(const response_meta& m, const usage_counts& u);

std::string models_body(std::string_view id, std::int64_t created, std::int32_t max_model_len);

// "data: <json>\n\n": one server-sent event.
inline std::string sse_event(std::string_view data) {
  std::string s;
  s.reserve(data.size() + 8);
  s += "data: ";
  s += data;
  s += "\n\n";
  return s;
}

}  // namespace gemmaforge::serve
