#pragma once
// Tool calls for /v1/chat/completions: `tools` + `tool_choice`, Gemma's function-calling prompt
// convention, the constrained call, and the response's `tool_calls`.
//
// Gemma 3 has no tool tokens. The tools are described in the system turn and the model is asked
// to answer with one fenced JSON call (the exact text is in docs/serving.md, "Tool calls"):
//   ```tool_call
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   ```
// The call is enforced by the grammar machinery (grammar/tool_call_grammar.hpp,
// framed_matcher.hpp): tool_choice "required" or a named function force the fenced call from the
// first token; "auto" lets the model write text and constrains the call once it opens the fence;
// "none" describes no tools and constrains nothing. One call per response.
//
// History: an assistant message with tool_calls is rendered as the fenced calls it made, a `tool`
// message as a user turn holding a ```tool_output block; consecutive turns of one side are joined
// (the Gemma template needs user/model alternation).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/grammar/grammar.hpp>
#include <gemmaforge/grammar/grammar_constraint.hpp>
#include <gemmaforge/tokenizer/chat_template.hpp>

#include "api_error.hpp"

namespace gemmaforge::serve {

struct response_meta;  // openai_response.hpp (which includes this header through openai_request.hpp)
struct usage_counts;

inline constexpr std::string_view tool_call_opener = "```tool_call\n";
inline constexpr std::string_view tool_call_closer = "\n```";

struct tool_request {
  enum class choice { none, automatic, required, named };
  struct function {
    std::string name, description;
    nlohmann::ordered_json parameters;
    std::shared_ptr<const grammar::compiled_grammar> grammar;
  };
  std::vector<function> functions;
  choice mode = choice::automatic;
  std::string named;  // tool_choice {"type": "function", "function": {"name": ...}}
  std::shared_ptr<const grammar::compiled_grammar> call_grammar;  // over the functions the choice allows
  bool history = false;  // the messages hold tool calls or results

  bool active() const { return !functions.empty() && mode != choice::none; }
  // The framing of the constrained call for this choice.
  grammar::frame_text frame() const;
};

// `tools` and `tool_choice` of a chat request body (400 naming the field when wrong).
tool_request parse_tools(const nlohmann::ordered_json& body);

// A history message the plain parser does not handle: role "tool", or an assistant message with
// tool_calls. Returns it as a chat_message (user/assistant) in the prompt convention.
chat_message tool_history_message(const nlohmann::json& m, std::size_t index, const std::string& role, const std::string& content);

// Adds the tool instructions to the system turn and, where tools or tool messages are present,
// joins consecutive turns of one side.
void render_tool_prompt(const tool_request& t, std::vector<chat_message>& messages);

struct tool_call_result {
  bool found = false;
  std::string content;    // text before the call (auto), trimmed
  std::string name, arguments, id;
};
// The call in a finished output, if complete and valid.
tool_call_result extract_tool_call(std::string_view text);

// A chat.completion body whose message carries tool_calls and finish_reason "tool_calls".
std::string tool_call_body(const response_meta& m, const tool_call_result& call, const usage_counts& u);

// Streaming: turns the model's text into chunk events, OpenAI's way: content deltas for text
// before a call, then delta.tool_calls with index 0, id, type and function name, then argument
// fragments, then finish_reason "tool_calls".
class tool_stream {
 public:
  tool_stream(const response_meta& meta, bool automatic);
  std::string on_text(std::string_view text);
  // At the end (stop or length): the remaining events and the finish reason to send.
  std::string on_finish(std::string& finish_reason);

 private:
  std::string emit_call_progress(bool final);
  std::shared_ptr<const response_meta> meta_;
  bool automatic_;
  std::string all_;           // everything the model wrote
  std::size_t content_sent_ = 0, args_sent_ = 0;
  bool in_call_ = false, name_sent_ = false;
  std::size_t call_start_ = 0;  // where the JSON begins in all_
  std::string id_;
};

}  // namespace gemmaforge::serve
