// OpenAI response bodies. ordered_json keeps OpenAI's field order (id, object, created, model,
// choices, usage), which clients do not need but people reading curl output do.
#include "openai_response.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

namespace gemmaforge::serve {

using ojson = nlohmann::ordered_json;

namespace {

// Model text is valid UTF-8 by construction (the detokenizer holds back incomplete characters),
// but a token that decodes to stray bytes must not turn a response into an exception.
std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

ojson head(const response_meta& m, const char* object) {
  ojson j;
  j["id"] = m.id;
  j["object"] = object;
  j["created"] = m.created;
  j["model"] = m.model;
  return j;
}

ojson finish_value(std::string_view finish_reason) {
  return finish_reason.empty() ? ojson() : ojson(std::string(finish_reason));
}

ojson usage_json(const usage_counts& u) {
  ojson j;
  j["prompt_tokens"] = u.prompt;
  j["completion_tokens"] = u.completion;
  j["total_tokens"] = u.prompt + u.completion;
  j["prompt_tokens_details"] = ojson{{"cached_tokens", u.cached}};
  return j;
}

}  // namespace

response_meta make_meta(api_kind kind, std::string model) {
  // Unique per process run and per request: a random run prefix plus a counter.
  static const std::uint64_t run = std::random_device{}() | (std::uint64_t(std::random_device{}()) << 32);
  static std::atomic<std::uint64_t> counter{0};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%016llx%08llx", static_cast<unsigned long long>(run),
                static_cast<unsigned long long>(counter.fetch_add(1, std::memory_order_relaxed)));
  response_meta m;
  m.kind = kind;
  m.id = std::string(kind == api_kind::chat ? "chatcmpl-" : "cmpl-") + buf;
  m.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.model = std::move(model);
  return m;
}

std::string completion_body(const response_meta& m, std::string_view text, std::string_view finish_reason, const usage_counts& u) {
  std::vector<choice_out> one(1);
  one[0].text = std::string(text);
  one[0].finish_reason = std::string(finish_reason);
  return completion_body(m, one, u);
}

std::string completion_body(const response_meta& m, const std::vector<choice_out>& choices, const usage_counts& u) {
  const bool chat = m.kind == api_kind::chat;
  ojson j = head(m, chat ? "chat.completion" : "text_completion");
  ojson list = ojson::array();
  for (const choice_out& c : choices) {
    ojson choice;
    choice["index"] = c.index;
    if (chat) choice["message"] = ojson{{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    choice["logprobs"] = c.logprobs;
    choice["finish_reason"] = finish_value(c.finish_reason);
    list.push_back(std::move(choice));
  }
  j["choices"] = std::move(list);
  j["usage"] = usage_json(u);
  return dump(j);
}

std::string chunk_body(const response_meta& m, std::string_view text, std::string_view finish_reason, bool role) {
  return chunk_body(m, 0, text, finish_reason, role, nullptr);
}

std::string chunk_body(const response_meta& m, std::int32_t index, std::string_view text, std::string_view finish_reason, bool role,
                       const ojson* logprobs) {
  const bool chat = m.kind == api_kind::chat;
  // Legacy completions stream objects of the same type as the full response.
  ojson j = head(m, chat ? "chat.completion.chunk" : "text_completion");
  ojson choice;
  choice["index"] = index;
  if (chat) {
    ojson delta = ojson::object();
    if (role) delta["role"] = "assistant";
    if (role || !text.empty()) delta["content"] = std::string(text);
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = std::string(text);
  }
  choice["logprobs"] = logprobs ? *logprobs : ojson();
  choice["finish_reason"] = finish_value(finish_reason);
  j["choices"] = ojson::array({std::move(choice)});
  return dump(j);
}

std::string usage_chunk_body(const response_meta& m, const usage_counts& u) {
  ojson j = head(m, m.kind == api_kind::chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = ojson::array();
  j["usage"] = usage_json(u);
  return dump(j);
}

std::string models_body(std::string_view id, std::int64_t created, std::int32_t max_model_len) {
  ojson model;
  model["id"] = std::string(id);
  model["object"] = "model";
  model["created"] = created;
  model["owned_by"] = "gemmaforge";
  model["max_model_len"] = max_model_len;  // vLLM's extension: what --ctx-size gave the engine
  ojson j;
  j["object"] = "list";
  j["data"] = ojson::array({std::move(model)});
  return dump(j);
}

}  // namespace gemmaforge::serve
