#pragma once
// response_format for /v1/chat/completions and /v1/completions:
//   {"type": "text"}                                   no constraint (the default)
//   {"type": "json_object"}                            any JSON object
//   {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": ...}}
// The schema is compiled here (grammar/json_schema.hpp) while the request is parsed, so an
// unsupported keyword is a 400 naming it before anything reaches the engine; the engine then
// enforces the grammar token by token (grammar/grammar_constraint.hpp). `strict` is accepted
// either way: the output always follows the schema.
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <gemmaforge/grammar/grammar.hpp>
#include <gemmaforge/grammar/token_trie.hpp>
#include <gemmaforge/runtime/token_constraint.hpp>

#include "api_error.hpp"

namespace gemmaforge::serve {

struct structured_output {
  enum class format { text, json_object, json_schema } type = format::text;
  std::string name;                                        // json_schema.name
  std::shared_ptr<const grammar::compiled_grammar> grammar; // null for text
};

// `rf` is the request's response_format (null = absent). Throws api_error (400, param
// "response_format") naming the field or the unsupported schema keyword.
structured_output parse_response_format(const nlohmann::ordered_json* rf);

// A function's `parameters` schema compiled the same way (tool_calls.cpp); `where` names the
// field in messages ("tools[0].function.parameters").
std::shared_ptr<const grammar::compiled_grammar> compile_schema_param(const nlohmann::ordered_json& schema, const std::string& where);

struct openai_request;
// The request's token constraint (response_format or a tool call), or null when unconstrained.
// Its per-request memory is allocated here, before submit.
std::shared_ptr<token_constraint> make_constraint(const openai_request& r, const std::shared_ptr<const grammar::token_trie>& trie);

}  // namespace gemmaforge::serve
