// Request-body parsing: JSON → openai_request, with OpenAI's field names, defaults and types.
#include "openai_request.hpp"

#include <cmath>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/runtime/logprobs.hpp>

namespace gemmaforge::serve {

using json = nlohmann::json;

std::string error_body(const api_error& e) {
  nlohmann::ordered_json err;
  err["message"] = e.what();
  err["type"] = e.type;
  err["param"] = e.param.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(e.param);
  err["code"] = e.code.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(e.code);
  nlohmann::ordered_json body;
  body["error"] = std::move(err);
  // Messages may quote user input; never let a stray byte turn an error into an exception.
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a floating-point number";
    default: return "an integer";
  }
}

[[noreturn]] void wrong_type(const std::string& name, const char* expected, const json& got) {
  throw invalid_request("'" + name + "' must be " + expected + ", got " + type_name(got), name);
}

// Typed access to the top-level fields. JSON null counts as absent, as in OpenAI's API (clients
// send `"stop": null` for "not given").
class fields {
 public:
  explicit fields(const json& obj) : obj_(obj) {}

  const json* get(const char* name) const {
    const auto it = obj_.find(name);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<double> number(const char* name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) wrong_type(name, "a number", *v);
    return v->get<double>();
  }
  std::optional<std::int64_t> integer(const char* name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (v->is_number_unsigned()) {
      // Larger than int64: clamp; every consumer has a far smaller bound and reports it.
      const auto u = v->get<std::uint64_t>();
      return std::int64_t(std::min<std::uint64_t>(u, std::uint64_t(std::numeric_limits<std::int64_t>::max())));
    }
    if (!v->is_number_integer()) wrong_type(name, "an integer", *v);
    return v->get<std::int64_t>();
  }
  std::optional<bool> boolean(const char* name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) wrong_type(name, "a boolean", *v);
    return v->get<bool>();
  }
  std::optional<std::string> string(const char* name) const {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) wrong_type(name, "a string", *v);
    return v->get<std::string>();
  }

 private:
  const json& obj_;
};

// float fields of sampling_params: a JSON number outside float's range becomes inf, which
// validate() then rejects with the field's own message.
float to_float(double d) {
  if (d > double(std::numeric_limits<float>::max())) return std::numeric_limits<float>::infinity();
  if (d < -double(std::numeric_limits<float>::max())) return -std::numeric_limits<float>::infinity();
  return float(d);
}

std::int32_t to_token_id(const json& v, const std::string& where) {
  if (!v.is_number_integer()) wrong_type(where, "a token id (integer)", v);
  const auto id = v.is_number_unsigned() ? std::int64_t(std::min<std::uint64_t>(v.get<std::uint64_t>(), 1ull << 40))
                                         : v.get<std::int64_t>();
  if (id < 0 || id > std::numeric_limits<std::int32_t>::max())
    throw invalid_request("'" + where + "' holds " + std::to_string(id) + ", which is not a token id", "prompt");
  return std::int32_t(id);
}

void parse_prompt(const fields& f, openai_request& r) {
  const json* p = f.get("prompt");
  if (!p) throw invalid_request("'prompt' is required", "prompt");
  if (p->is_string()) {
    r.prompt_text = p->get<std::string>();
    return;
  }
  if (!p->is_array()) wrong_type("prompt", "a string, an array of token ids or an array of one string", *p);
  if (p->empty()) throw invalid_request("'prompt' must not be empty", "prompt");
  const json& first = (*p)[0];
  if (first.is_number()) {  // one prompt as token ids
    r.prompt_is_ids = true;
    r.prompt_ids.reserve(p->size());
    for (std::size_t i = 0; i < p->size(); ++i) r.prompt_ids.push_back(to_token_id((*p)[i], "prompt[" + std::to_string(i) + "]"));
    return;
  }
  // A list of prompts: OpenAI's batch form. One choice per request here, so only a list of one.
  if (p->size() > 1)
    throw invalid_request("batched prompts are not supported: send one prompt per request (got " + std::to_string(p->size()) + ")",
                          "prompt");
  if (first.is_string()) {
    r.prompt_text = first.get<std::string>();
  } else if (first.is_array()) {
    if (first.empty()) throw invalid_request("'prompt[0]' must not be empty", "prompt");
    r.prompt_is_ids = true;
    for (std::size_t i = 0; i < first.size(); ++i)
      r.prompt_ids.push_back(to_token_id(first[i], "prompt[0][" + std::to_string(i) + "]"));
  } else {
    wrong_type("prompt[0]", "a string or an array of token ids", first);
  }
}

std::string message_content(const json& m, std::size_t i, const std::string& role) {
  const std::string where = "messages[" + std::to_string(i) + "].content";
  const auto it = m.find("content");
  if (it == m.end() || it->is_null()) {
    // An assistant turn may have no content (OpenAI allows it next to tool calls).
    if (role == "assistant") return {};
    throw invalid_request("'" + where + "' is required", "messages");
  }
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) wrong_type(where, "a string or an array of content parts", *it);
  // Content parts: text only (no images or audio on these models). Joined with newlines, as vLLM does.
  std::string text;
  for (std::size_t k = 0; k < it->size(); ++k) {
    const json& part = (*it)[k];
    const std::string pw = where + "[" + std::to_string(k) + "]";
    if (!part.is_object()) wrong_type(pw, "an object", part);
    const auto type = part.find("type");
    if (type == part.end() || !type->is_string() || type->get<std::string>() != "text")
      throw invalid_request("'" + pw + "': only content parts of type \"text\" are supported", "messages");
    const auto t = part.find("text");
    if (t == part.end() || !t->is_string()) throw invalid_request("'" + pw + ".text' must be a string", "messages");
    if (k) text += '\n';
    text += t->get<std::string>();
  }
  return text;
}

void parse_messages(const fields& f, openai_request& r) {
  const json* ms = f.get("messages");
  if (!ms) throw invalid_request("'messages' is required", "messages");
  if (!ms->is_array()) wrong_type("messages", "an array", *ms);
  if (ms->empty()) throw invalid_request("'messages' must not be empty", "messages");
  for (std::size_t i = 0; i < ms->size(); ++i) {
    const json& m = (*ms)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) wrong_type(where, "an object", m);
    const auto role_it = m.find("role");
    if (role_it == m.end() || !role_it->is_string()) throw invalid_request("'" + where + ".role' must be a string", "messages");
    std::string role = role_it->get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw invalid_request("'" + where + ".role' is " + quote_for_message(role) + ": expected system, user, assistant or tool",
                            "messages", "invalid_role");
    if (role == "tool" || (role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null())) {
      r.messages.push_back(tool_history_message(m, i, role, message_content(m, i, role == "tool" ? "user" : role)));
      r.tools.history = true;
      continue;
    }
    r.messages.push_back(chat_message{role, message_content(m, i, role)});
  }
}

void reject_unsupported(const fields& f) {
  if (const auto s = f.string("suffix"); s && !s->empty()) throw invalid_request("suffix is not supported by this server", "suffix");
  if (const json* t = f.get("functions"); t && !(t->is_array() && t->empty()))
    throw invalid_request("functions (the deprecated form) are not supported: send tools", "functions");
}

void parse_sampling(const fields& f, openai_request& r) {
  sampling_params& s = r.sampling;
  s.temperature = 1.0f;  // OpenAI's defaults (the engine's own default is greedy)
  s.top_p = 1.0f;
  if (auto v = f.number("temperature")) s.temperature = to_float(*v);
  if (auto v = f.number("top_p")) s.top_p = to_float(*v);
  if (auto v = f.integer("top_k")) {
    if (*v < -1) throw invalid_request("top_k must be >= 0 (0 or -1 = off)", "top_k");
    s.top_k = *v == -1 ? 0 : std::int32_t(std::min<std::int64_t>(*v, std::numeric_limits<std::int32_t>::max()));
  }
  if (auto v = f.number("min_p")) s.min_p = to_float(*v);
  if (auto v = f.number("frequency_penalty")) s.frequency_penalty = to_float(*v);
  if (auto v = f.number("presence_penalty")) s.presence_penalty = to_float(*v);
  if (auto v = f.number("repetition_penalty")) s.repetition_penalty = to_float(*v);
  if (const json* sv = f.get("seed")) {
    // One documented range, vLLM's: a signed 64-bit integer. Negative seeds map to their two's
    // complement, so every value in the range is its own seed; outside it, 400 (never a clamp
    // that would make distinct seeds collide).
    if (sv->is_number_unsigned() && sv->get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
      throw invalid_request("seed must be within [-9223372036854775808, 9223372036854775807], got " + sv->dump(), "seed");
    const auto v = f.integer("seed");
    s.seed = std::uint64_t(*v);
    r.seed_given = true;
  } else {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    s.seed = rng();
  }
  try {
    validate(s);
  } catch (const error& e) {
    // validate() names the field first ("top_p must be in (0, 1]").
    const std::string msg = e.what();
    throw invalid_request(msg, msg.substr(0, msg.find(' ')));
  }
}

void parse_stop(const fields& f, openai_request& r) {
  const json* st = f.get("stop");
  if (!st) return;
  if (st->is_string()) {
    r.stop.push_back(st->get<std::string>());
  } else if (st->is_array()) {
    if (st->size() > max_stop_strings)
      throw invalid_request("'stop' has " + std::to_string(st->size()) + " strings; at most " + std::to_string(max_stop_strings) +
                                " are supported",
                            "stop");
    for (std::size_t i = 0; i < st->size(); ++i) {
      if (!(*st)[i].is_string()) wrong_type("stop[" + std::to_string(i) + "]", "a string", (*st)[i]);
      r.stop.push_back((*st)[i].get<std::string>());
    }
  } else {
    wrong_type("stop", "a string or an array of strings", *st);
  }
  for (const auto& s : r.stop)
    if (s.empty()) throw invalid_request("stop strings must not be empty", "stop");
}

// n and best_of. best_of is the legacy completions' parameter (chat has only n); with streaming
// best_of must equal n, since the choices are picked only once all are done (OpenAI's rule).
void parse_choices(const fields& f, openai_request& r) {
  if (const auto n = f.integer("n")) {
    if (*n < 1 || *n > max_choices)
      throw invalid_request("n must be in [1, " + std::to_string(max_choices) + "], got " + std::to_string(*n), "n");
    r.n = std::int32_t(*n);
  }
  r.best_of = r.n;
  if (const auto b = f.integer("best_of")) {
    if (r.kind == api_kind::chat) throw invalid_request("best_of is a parameter of /v1/completions only; use n for chat", "best_of");
    if (*b < r.n || *b > max_choices)
      throw invalid_request("best_of must be in [n, " + std::to_string(max_choices) + "] (n = " + std::to_string(r.n) + "), got " +
                                std::to_string(*b),
                            "best_of");
    r.best_of = std::int32_t(*b);
  }
  if (r.stream && r.best_of > r.n)
    throw invalid_request("best_of > n cannot be streamed: the best choices are known only at the end", "best_of");
}

// Completions: logprobs is an integer k in [0, 5] (k alternatives per token), echo a boolean.
// Chat: logprobs is a boolean, top_logprobs an integer in [0, 20] that needs logprobs true.
void parse_logprobs(const fields& f, openai_request& r) {
  if (r.kind == api_kind::completion) {
    if (const json* lp = f.get("logprobs")) {
      if (lp->is_boolean()) {  // some clients send false for "off"
        if (lp->get<bool>()) throw invalid_request("'logprobs' of /v1/completions is an integer in [0, 5], not true", "logprobs");
      } else {
        const auto k = f.integer("logprobs");
        if (*k < 0 || *k > max_completion_logprobs)
          throw invalid_request("logprobs must be in [0, " + std::to_string(max_completion_logprobs) + "], got " + std::to_string(*k),
                                "logprobs");
        r.logprobs = std::int32_t(*k);
      }
    }
    r.echo = f.boolean("echo").value_or(false);
    if (f.get("top_logprobs")) throw invalid_request("top_logprobs is a parameter of /v1/chat/completions; use logprobs: k", "top_logprobs");
    return;
  }
  if (f.get("echo") && f.boolean("echo").value_or(false)) throw invalid_request("echo is a parameter of /v1/completions only", "echo");
  const bool on = f.boolean("logprobs").value_or(false);
  const auto top = f.integer("top_logprobs");
  if (top && (*top < 0 || *top > max_top_logprobs))
    throw invalid_request("top_logprobs must be in [0, " + std::to_string(max_top_logprobs) + "], got " + std::to_string(*top),
                          "top_logprobs");
  if (top && !on) throw invalid_request("top_logprobs needs logprobs: true", "top_logprobs");
  if (on) r.logprobs = top ? std::int32_t(*top) : 0;
}

// logit_bias: {"<token id>": bias}, the bias in [-100, 100] (-100 bans the token). Ids are
// checked against the vocabulary by the server (the model's), everything else here.
void parse_logit_bias(const fields& f, openai_request& r) {
  const json* lb = f.get("logit_bias");
  if (!lb) return;
  if (!lb->is_object()) wrong_type("logit_bias", "an object mapping token ids to biases", *lb);
  if (lb->size() > max_logit_bias_entries)
    throw invalid_request("logit_bias has " + std::to_string(lb->size()) + " entries; at most " +
                              std::to_string(max_logit_bias_entries) + " are supported",
                          "logit_bias");
  for (const auto& [key, value] : lb->items()) {
    std::int64_t id = -1;
    bool ok = !key.empty() && key.size() <= 10;
    for (char c : key) ok = ok && c >= '0' && c <= '9';
    if (ok) id = std::stoll(key);
    if (!ok || id > std::numeric_limits<std::int32_t>::max())
      throw invalid_request("'logit_bias' key " + quote_for_message(key) + " is not a token id (a non-negative integer)", "logit_bias");
    const std::string where = "logit_bias for token " + std::to_string(id);
    if (!value.is_number()) throw invalid_request(where + " must be a number, got " + type_name(value), "logit_bias");
    const double b = value.get<double>();
    if (!(b >= -100.0 && b <= 100.0)) throw invalid_request(where + " is " + value.dump() + ": a bias must be in [-100, 100]", "logit_bias");
    r.sampling.logit_bias.push_back(logit_bias_entry{std::int32_t(id), float(b)});
  }
}

// response_format and tools compile schemas, whose property order is the order the output is
// written in: they are read from an order-keeping parse of the body.
void parse_constraints(const json& doc, std::string_view body, openai_request& r) {
  const bool has_rf = doc.contains("response_format") && !doc["response_format"].is_null();
  const bool has_tools = (doc.contains("tools") && !doc["tools"].is_null()) || (doc.contains("tool_choice") && !doc["tool_choice"].is_null());
  if (!has_rf && !has_tools) return;
  if (has_tools && r.kind != api_kind::chat) throw invalid_request("tools are supported by /v1/chat/completions only", "tools");
  const auto od = nlohmann::ordered_json::parse(body);
  if (has_rf) r.response_format = parse_response_format(&od["response_format"]);
  if (has_tools) r.tools = parse_tools(od);
  if (r.tools.active() && r.response_format.grammar)
    throw invalid_request("response_format and tools cannot both constrain one response: send tool_choice \"none\" or no response_format",
                          "response_format");
}

}  // namespace

openai_request parse_openai_request(api_kind kind, std::string_view body) {
  // JSON text is UTF-8 (RFC 8259); checking the whole body first gives one clear message, where
  // the parser's would quote the offending bytes.
  if (const std::size_t bad = utf8_first_invalid(body); bad != std::string_view::npos)
    throw invalid_request("request body is not valid UTF-8 (invalid byte at offset " + std::to_string(bad) + ")", {}, "invalid_utf8");
  // A raw NUL is not JSON (control characters must be escaped), but nlohmann's parser reads it as
  // the end of the input and would ignore what follows: refuse it, whatever comes after.
  if (const std::size_t nul = body.find('\0'); nul != std::string_view::npos)
    throw invalid_request("request body is not valid JSON: a raw NUL byte at offset " + std::to_string(nul), {}, "invalid_json");
  json doc;
  try {
    // Nesting deeper than max_json_depth is refused as the parser reaches it, so a deep body
    // costs no more than a shallow one (the tree is never built past the limit).
    doc = json::parse(body, [](int depth, json::parse_event_t event, json&) {
      if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth >= int(max_json_depth))
        throw invalid_request("request body is nested deeper than " + std::to_string(max_json_depth) + " levels", {}, "invalid_json");
      return true;
    });
  } catch (const json::exception& e) {
    // Not only parse_error: a number beyond double's range (1e400) is out_of_range.406, thrown
    // by the parser too. Both are the client's malformed body, never a server fault.
    throw invalid_request(std::string("request body is not valid JSON: ") + e.what(), {}, "invalid_json");
  }
  if (!doc.is_object()) throw invalid_request(std::string("request body must be a JSON object, got ") + type_name(doc), {}, "invalid_json");

  const fields f(doc);
  openai_request r;
  r.kind = kind;
  if (auto m = f.string("model")) r.model = *m;
  reject_unsupported(f);
  parse_constraints(doc, body, r);
  if (kind == api_kind::completion) parse_prompt(f, r);
  else parse_messages(f, r);
  if (kind == api_kind::chat) render_tool_prompt(r.tools, r.messages);

  const auto mct = f.integer("max_completion_tokens");
  const auto mt = f.integer("max_tokens");
  if (mct || mt) {
    const char* name = mct ? "max_completion_tokens" : "max_tokens";
    r.max_tokens = mct ? *mct : *mt;
    if (*r.max_tokens < 1) throw invalid_request(std::string(name) + " must be at least 1, got " + std::to_string(*r.max_tokens), name);
  }
  parse_sampling(f, r);
  parse_stop(f, r);
  r.ignore_eos = f.boolean("ignore_eos").value_or(false);
  r.stream = f.boolean("stream").value_or(false);
  if (const json* so = f.get("stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object", *so);
    const auto iu = so->find("include_usage");
    if (iu != so->end() && !iu->is_null()) {
      if (!iu->is_boolean()) wrong_type("stream_options.include_usage", "a boolean", *iu);
      r.include_usage = iu->get<bool>();
    }
  }
  parse_choices(f, r);
  parse_logprobs(f, r);
  parse_logit_bias(f, r);
  // A tool call is streamed and parsed as one choice of text (tool_calls.hpp).
  if (r.tools.active() && (r.best_of > 1 || r.logprobs >= 0))
    throw invalid_request("tools are answered as one choice without logprobs: send n = 1 and no logprobs with tools",
                          r.best_of > 1 ? "n" : "logprobs");
  return r;
}

}  // namespace gemmaforge::serve
