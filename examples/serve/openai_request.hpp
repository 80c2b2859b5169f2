#pragma once
// Parsing and validation of the OpenAI request bodies (/v1/completions, /v1/chat/completions).
// Everything that can be checked without the model happens here and fails with an api_error that
// names the field (param), so a bad request never reaches the engine. What needs the model
// (token counts against the context, ids against the vocabulary) is checked by the handlers.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/runtime/sampling_params.hpp>
#include <gemmaforge/tokenizer/chat_template.hpp>

#include "api_error.hpp"
#include "structured_output.hpp"
#include "tool_calls.hpp"

namespace gemmaforge::serve {

enum class api_kind { completion, chat };

struct openai_request {
  api_kind kind = api_kind::completion;
  std::string model;                        // as requested; empty = the served model

  // completion: a text prompt or token ids (used exactly as given, no BOS added)
  std::string prompt_text;
  std::vector<std::int32_t> prompt_ids;
  bool prompt_is_ids = false;
  // chat
  std::vector<chat_message> messages;       // roles normalised to system/user/assistant

  std::optional<std::int64_t> max_tokens;   // max_completion_tokens wins over max_tokens
  sampling_params sampling;                 // OpenAI defaults: temperature 1, top_p 1
  bool seed_given = false;
  std::vector<std::string> stop;
  bool ignore_eos = false;                  // vLLM's extension: run to max_tokens (benchmarks)
  bool stream = false;
  bool include_usage = false;               // stream_options.include_usage

  // Choices (parse_choices): n returned, best_of generated (completions; best_of >= n, the n
  // with the highest cumulative log-probability are returned). best_of == n when not given.
  std::int32_t n = 1;
  std::int32_t best_of = 1;
  // Log-probabilities (parse_logprobs): -1 none; else each token's and this many alternatives
  // (completions: logprobs k <= 5; chat: logprobs true + top_logprobs k <= 20).
  std::int32_t logprobs = -1;
  bool echo = false;                        // completions: the prompt precedes each choice's text
  // logit_bias (parse_logit_bias) goes to sampling.logit_bias.
  structured_output response_format;        // json_object / json_schema (structured_output.hpp)
  tool_request tools;                       // chat: tools + tool_choice (tool_calls.hpp)
};

// Limits that are not the model's: kept small so a request cannot make the server do unbounded
// work before it reaches the engine.
inline constexpr std::size_t max_stop_strings = 16;
inline constexpr std::size_t max_json_depth = 64;  // nested arrays/objects in a request body
inline constexpr std::int32_t max_choices = 16;     // n and best_of (each choice is a sequence of the batch)
inline constexpr std::int32_t max_completion_logprobs = 5;  // legacy completions' logprobs, as OpenAI

// Throws api_error (400) for malformed JSON, invalid UTF-8, wrong types, missing fields, values
// out of range (sampling_params::validate), unsupported options (suffix, ...), a schema
// keyword the grammar compiler does not support (response_format, tools).
openai_request parse_openai_request(api_kind kind, std::string_view body);

}  // namespace gemmaforge::serve
