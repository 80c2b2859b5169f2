// tools / tool_choice: see tool_calls.hpp.
#include "tool_calls.hpp"

#include <random>

#include <gemmaforge/grammar/tool_call_grammar.hpp>

#include "openai_response.hpp"
#include "structured_output.hpp"

namespace gemmaforge::serve {

using ojson = nlohmann::ordered_json;

namespace {

constexpr std::size_t max_tools = 128;

bool valid_function_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

std::string new_call_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += alphabet[rng() % (sizeof alphabet - 1)];
  return id;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

}  // namespace

grammar::frame_text tool_request::frame() const {
  return {std::string(tool_call_opener), std::string(tool_call_closer), mode == choice::automatic};
}

tool_request parse_tools(const ojson& body) {
  tool_request t;
  const auto tools = body.find("tools");
  if (tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) throw invalid_request("'tools' must be an array", "tools");
    if (tools->size() > max_tools) throw invalid_request("'tools' has more than " + std::to_string(max_tools) + " functions", "tools");
    for (std::size_t i = 0; i < tools->size(); ++i) {
      const ojson& tool = (*tools)[i];
      const std::string where = "tools[" + std::to_string(i) + "]";
      if (!tool.is_object() || tool.value("type", std::string()) != "function")
        throw invalid_request("'" + where + "' must be {\"type\": \"function\", \"function\": {...}}", "tools");
      const auto fn = tool.find("function");
      if (fn == tool.end() || !fn->is_object()) throw invalid_request("'" + where + ".function' must be an object", "tools");
      tool_request::function f;
      const auto name = fn->find("name");
      if (name == fn->end() || !name->is_string() || !valid_function_name(name->get<std::string>()))
        throw invalid_request("'" + where + ".function.name' must be 1 to 64 characters of a-z, A-Z, 0-9, _ and -", "tools");
      f.name = name->get<std::string>();
      for (const auto& other : t.functions)
        if (other.name == f.name) throw invalid_request("'" + where + "': the function name '" + f.name + "' is used twice", "tools");
      if (const auto d = fn->find("description"); d != fn->end() && !d->is_null()) {
        if (!d->is_string()) throw invalid_request("'" + where + ".function.description' must be a string", "tools");
        f.description = d->get<std::string>();
      }
      const auto params = fn->find("parameters");
      f.parameters = params == fn->end() || params->is_null()
                         ? ojson{{"type", "object"}, {"properties", ojson::object()}, {"additionalProperties", false}}
                         : *params;
      if (!f.parameters.is_object()) throw invalid_request("'" + where + ".function.parameters' must be a JSON Schema object", "tools");
      f.grammar = compile_schema_param(f.parameters, where + ".function.parameters");
      t.functions.push_back(std::move(f));
    }
  }
  const auto choice = body.find("tool_choice");
  if (choice != body.end() && !choice->is_null()) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c == "none") t.mode = tool_request::choice::none;
      else if (c == "auto") t.mode = tool_request::choice::automatic;
      else if (c == "required") t.mode = tool_request::choice::required;
      else throw invalid_request("'tool_choice' is '" + c + "': expected none, auto, required or {\"type\": \"function\", ...}", "tool_choice");
    } else if (choice->is_object()) {
      const auto fn = choice->find("function");
      if (choice->value("type", std::string()) != "function" || fn == choice->end() || !fn->is_object() || !fn->contains("name") ||
          !(*fn)["name"].is_string())
        throw invalid_request("'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
      t.mode = tool_request::choice::named;
      t.named = (*fn)["name"].get<std::string>();
      bool known = false;
      for (const auto& f : t.functions) known = known || f.name == t.named;
      if (!known) throw invalid_request("'tool_choice' names the function '" + t.named + "', which 'tools' does not declare", "tool_choice");
    } else {
      throw invalid_request("'tool_choice' must be a string or an object", "tool_choice");
    }
    if (t.functions.empty() && (t.mode == tool_request::choice::required || t.mode == tool_request::choice::named))
      throw invalid_request("'tool_choice' requires a call but 'tools' is empty", "tool_choice");
  }
  if (t.active()) {
    std::vector<grammar::tool_function_grammar> allowed;
    for (const auto& f : t.functions)
      if (t.mode != tool_request::choice::named || f.name == t.named) allowed.push_back({f.name, f.grammar.get()});
    t.call_grammar = std::make_shared<const grammar::compiled_grammar>(grammar::tool_call_grammar(allowed));
  }
  return t;
}

chat_message tool_history_message(const nlohmann::json& m, std::size_t index, const std::string& role, const std::string& content) {
  const std::string where = "messages[" + std::to_string(index) + "]";
  if (role == "tool") {
    const auto id = m.find("tool_call_id");
    if (id == m.end() || !id->is_string()) throw invalid_request("'" + where + ".tool_call_id' is required for a tool message", "messages");
    return {"user", "```tool_output\n" + content + "\n```"};
  }
  const auto calls = m.find("tool_calls");
  if (!calls->is_array()) throw invalid_request("'" + where + ".tool_calls' must be an array", "messages");
  std::string text = content;
  for (std::size_t k = 0; k < calls->size(); ++k) {
    const auto& c = (*calls)[k];
    const std::string cw = where + ".tool_calls[" + std::to_string(k) + "]";
    const auto fn = c.is_object() ? c.find("function") : c.end();
    if (fn == c.end() || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
      throw invalid_request("'" + cw + ".function.name' must be a string", "messages");
    ojson args = ojson::object();
    if (const auto a = fn->find("arguments"); a != fn->end() && a->is_string()) {
      try {
        args = ojson::parse(a->get<std::string>());
      } catch (const std::exception&) {
        throw invalid_request("'" + cw + ".function.arguments' must be a JSON text", "messages");
      }
    }
    if (!text.empty()) text += "\n";
    // The form the prompt asks for (and the grammar enforces).
    text += std::string(tool_call_opener) + "{\"name\": " + dump(ojson((*fn)["name"].get<std::string>())) +
            ", \"arguments\": " + dump(args) + "}" + std::string(tool_call_closer);
  }
  return {"assistant", text};
}

void render_tool_prompt(const tool_request& t, std::vector<chat_message>& messages) {
  if (t.active()) {
    std::string text = "You have access to the following functions, each given as its name, what it does and the JSON Schema of its arguments:\n";
    for (const auto& f : t.functions) {
      ojson d;
      d["name"] = f.name;
      d["description"] = f.description;
      d["parameters"] = f.parameters;
      text += dump(d) + "\n";
    }
    text += "\nTo call a function, answer with the call alone, in exactly this form:\n";
    text += std::string(tool_call_opener) + "{\"name\": \"<function name>\", \"arguments\": {<the arguments as JSON>}}" +
            std::string(tool_call_closer) + "\n";
    text += "The result of a call is given back to you in a ```tool_output block.\n";
    if (t.mode == tool_request::choice::automatic)
      text += "Call a function only when it helps to answer; otherwise answer normally.";
    else if (t.mode == tool_request::choice::required)
      text += "You must call one of the functions now.";
    else
      text += "You must call the function " + t.named + " now.";
    if (!messages.empty() && messages[0].role == "system") messages[0].content += "\n\n" + text;
    else messages.insert(messages.begin(), chat_message{"system", text});
  }
  if (!t.active() && !t.history) return;
  // The template needs user/model alternation: a tool result followed by a user message (or two
  // tool results) become one user turn.
  std::vector<chat_message> joined;
  for (auto& m : messages) {
    if (!joined.empty() && joined.back().role == m.role && m.role != "system") joined.back().content += "\n\n" + m.content;
    else joined.push_back(std::move(m));
  }
  messages = std::move(joined);
}

tool_call_result extract_tool_call(std::string_view text) {
  tool_call_result r;
  const auto open = text.find(tool_call_opener);
  if (open == std::string_view::npos) return r;
  const auto start = open + tool_call_opener.size();
  const auto close = text.rfind(tool_call_closer);
  if (close == std::string_view::npos || close < start) return r;
  try {
    const auto call = ojson::parse(text.substr(start, close - start));
    if (!call.is_object() || !call.contains("name") || !call["name"].is_string() || !call.contains("arguments")) return r;
    r.name = call["name"].get<std::string>();
    r.arguments = dump(call["arguments"]);
  } catch (const std::exception&) {
    return r;
  }
  r.found = true;
  r.content = trim(text.substr(0, open));
  r.id = new_call_id();
  return r;
}

std::string tool_call_body(const response_meta& m, const tool_call_result& call, const usage_counts& u) {
  ojson j = ojson::parse(completion_body(m, {}, "tool_calls", u));
  ojson& msg = j["choices"][0]["message"];
  msg["content"] = call.content.empty() ? ojson() : ojson(call.content);
  ojson tc;
  tc["id"] = call.id;
  tc["type"] = "function";
  tc["function"] = ojson{{"name", call.name}, {"arguments", call.arguments}};
  msg["tool_calls"] = ojson::array({tc});
  return dump(j);
}

// ---- streaming
namespace {
std::string delta_event(const response_meta& m, ojson delta) {
  ojson j = ojson::parse(chunk_body(m, {}));
  j["choices"][0]["delta"] = std::move(delta);
  return sse_event(dump(j));
}
std::string content_event(const response_meta& m, std::string_view text) {
  return text.empty() ? std::string() : sse_event(chunk_body(m, text));
}
}  // namespace

tool_stream::tool_stream(const response_meta& meta, bool automatic)
    : meta_(std::make_shared<const response_meta>(meta)), automatic_(automatic) {}

std::string tool_stream::on_text(std::string_view text) {
  all_ += text;
  std::string out;
  if (!in_call_) {
    if (!automatic_) {
      if (all_.size() < tool_call_opener.size()) return out;
      in_call_ = true;
      call_start_ = tool_call_opener.size();
      content_sent_ = all_.size();
    } else if (const auto p = all_.find(tool_call_opener, content_sent_ >= 16 ? content_sent_ - 16 : 0); p != std::string::npos) {
      if (p > content_sent_) out += content_event(*meta_, std::string_view(all_).substr(content_sent_, p - content_sent_));
      in_call_ = true;
      call_start_ = p + tool_call_opener.size();
      content_sent_ = all_.size();
    } else {
      // Hold back an ending that may be the start of the opener.
      std::size_t hold = 0;
      for (std::size_t k = std::min(all_.size(), tool_call_opener.size() - 1); k > 0; --k)
        if (std::string_view(all_).substr(all_.size() - k) == tool_call_opener.substr(0, k)) {
          hold = k;
          break;
        }
      const std::size_t upto = all_.size() - hold;
      if (upto > content_sent_) out += content_event(*meta_, std::string_view(all_).substr(content_sent_, upto - content_sent_));
      content_sent_ = std::max(content_sent_, upto);
      return out;
    }
  }
  return out + emit_call_progress(false);
}

std::string tool_stream::emit_call_progress(bool final) {
  std::string out;
  const std::string_view call = std::string_view(all_).substr(call_start_);
  constexpr std::string_view args_key = ", \"arguments\"";
  const auto key = call.find(args_key);
  if (key == std::string_view::npos) return out;
  if (!name_sent_) {
    constexpr std::string_view name_key = "{\"name\": ";
    std::string name;
    try {
      name = ojson::parse(call.substr(name_key.size(), key - name_key.size())).get<std::string>();
    } catch (const std::exception&) {
      return out;
    }
    id_ = new_call_id();
    ojson tc;
    tc["index"] = 0;
    tc["id"] = id_;
    tc["type"] = "function";
    tc["function"] = ojson{{"name", name}, {"arguments", ""}};
    out += delta_event(*meta_, ojson{{"tool_calls", ojson::array({tc})}});
    name_sent_ = true;
  }
  const auto colon = call.find(':', key + args_key.size());
  if (colon == std::string_view::npos) return out;
  const auto begin = call.find_first_not_of(" \t\r\n", colon + 1);
  if (begin == std::string_view::npos) return out;
  std::string_view args = call.substr(begin);
  if (final) {
    // The arguments end at the call object's closing brace, before the closer.
    const auto close = args.rfind(tool_call_closer);
    if (close != std::string_view::npos) args = args.substr(0, close);
    const auto brace = args.find_last_of('}');
    args = args.substr(0, brace == std::string_view::npos ? args.size() : brace);
    args = args.substr(0, args.find_last_not_of(" \t\r\n") + 1);
  } else {
    // Hold back what may be the end of the call: whitespace, '}', the closer.
    constexpr std::size_t tail = 2 * 16 + 2 + tool_call_closer.size();
    args = args.size() > tail ? args.substr(0, args.size() - tail) : std::string_view();
  }
  if (args.size() > args_sent_) {
    ojson tc;
    tc["index"] = 0;
    tc["function"] = ojson{{"arguments", std::string(args.substr(args_sent_))}};
    out += delta_event(*meta_, ojson{{"tool_calls", ojson::array({tc})}});
    args_sent_ = args.size();
  }
  return out;
}

std::string tool_stream::on_finish(std::string& finish_reason) {
  if (in_call_ && extract_tool_call(all_).found) {
    finish_reason = "tool_calls";
    return emit_call_progress(true);
  }
  // No call, or an incomplete one (length): what was held back goes out as text.
  std::string out = content_event(*meta_, std::string_view(all_).substr(std::min(content_sent_, all_.size())));
  content_sent_ = all_.size();
  return out;
}

}  // namespace gemmaforge::serve
