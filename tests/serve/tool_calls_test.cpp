// tools / tool_choice / response_format parsing, the tool prompt, and the streamed tool call
// (no server, no model): the request parser's 400s, the rendered history, and that a call split
// into any pieces streams as id + name first, then argument fragments that join to the arguments.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "openai_request.hpp"
#include "openai_response.hpp"
#include "sse_stream.hpp"
#include "tool_calls.hpp"

namespace gs = gemmaforge::serve;
using json = nlohmann::json;

namespace {
const char* weather_tool = R"({"type": "function", "function": {"name": "get_weather", "description": "d",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}})";

gs::openai_request chat(const std::string& extra) {
  return gs::parse_openai_request(gs::api_kind::chat, R"({"messages": [{"role": "user", "content": "hi"}])" + extra + "}");
}
std::string param_of(const std::string& extra) {
  try {
    chat(extra);
  } catch (const gs::api_error& e) {
    return e.param + ": " + e.what();
  }
  return "<accepted>";
}
std::vector<json> events(const std::string& sse) {
  std::vector<json> out;
  for (std::size_t p = 0; (p = sse.find("data: ", p)) != std::string::npos;) {
    const auto e = sse.find("\n\n", p);
    out.push_back(json::parse(sse.substr(p + 6, e - p - 6)));
    p = e;
  }
  return out;
}
}  // namespace

TEST_CASE("serve: response_format and tools are parsed and bad ones refused naming the field", "[serve][grammar]") {
  CHECK(chat("")
            .response_format.type == gs::structured_output::format::text);
  CHECK(chat(R"(, "response_format": {"type": "json_object"})").response_format.grammar != nullptr);
  const auto r = chat(R"(, "response_format": {"type": "json_schema", "json_schema": {"name": "p", "strict": true, "schema": {"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "integer"}}}}})");
  REQUIRE(r.response_format.grammar);
  CHECK(r.response_format.name == "p");
  // Schema order, not sorted order: "b" is the first property.
  CHECK(r.response_format.grammar->properties.at(0).key_text == "b\"");
  CHECK(param_of(R"(, "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "string", "pattern": "a"}}})")
            .find("response_format: 'response_format.json_schema.schema': unsupported JSON Schema keyword 'pattern'") == 0);
  CHECK(param_of(R"(, "response_format": {"type": "yaml"})").rfind("response_format", 0) == 0);
  CHECK(param_of(R"(, "tools": [{"type": "function", "function": {"name": "a b"}}])").rfind("tools", 0) == 0);
  CHECK(param_of(std::string(R"(, "tools": [)") + weather_tool + R"(], "tool_choice": "sometimes")").rfind("tool_choice", 0) == 0);
  CHECK(param_of(R"(, "tool_choice": "required")").rfind("tool_choice", 0) == 0);
  CHECK(param_of(std::string(R"(, "tools": [)") + weather_tool + "," + weather_tool + "]").find("used twice") != std::string::npos);
  CHECK(param_of(std::string(R"(, "tools": [)") + weather_tool + R"(], "response_format": {"type": "json_object"})").rfind("response_format", 0) == 0);
  try {
    gs::parse_openai_request(gs::api_kind::completion, std::string(R"({"prompt": "x", "tools": [)") + weather_tool + "]}");
    FAIL("tools accepted on completions");
  } catch (const gs::api_error& e) {
    CHECK(e.param == "tools");
  }
}

TEST_CASE("serve: the tool prompt and a tool round trip in the history", "[serve][grammar]") {
  const auto r = gs::parse_openai_request(gs::api_kind::chat, std::string(R"({"tools": [)") + weather_tool + R"(], "messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"t\": 21}"},
    {"role": "user", "content": "And in C?"}]})");
  REQUIRE(r.messages.size() == 4);  // system, user, assistant, tool result + user joined
  CHECK(r.messages[0].role == "system");
  CHECK(r.messages[0].content.rfind("Be brief.\n\nYou have access to the following functions", 0) == 0);
  CHECK(r.messages[0].content.find(R"({"name":"get_weather","description":"d","parameters":{"type":"object")") != std::string::npos);
  CHECK(r.messages[2].role == "assistant");
  CHECK(r.messages[2].content == "```tool_call\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n```");
  CHECK(r.messages[3].role == "user");
  CHECK(r.messages[3].content == "```tool_output\n{\"t\": 21}\n```\n\nAnd in C?");
  CHECK(r.tools.active());
  CHECK(r.tools.mode == gs::tool_request::choice::automatic);
  // Without tools, messages out of order are still refused later (not joined).
  const auto plain = chat("");
  CHECK(plain.messages.size() == 1);
}

TEST_CASE("serve: a tool call is extracted and streamed as OpenAI streams it however the text is split", "[serve][grammar]") {
  const std::string text = "Let me check.\n```tool_call\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris \\\"Ville\\\" {x}\"}}\n```";
  const auto call = gs::extract_tool_call(text);
  REQUIRE(call.found);
  CHECK(call.name == "get_weather");
  CHECK(json::parse(call.arguments) == json{{"city", "Paris \"Ville\" {x}"}});
  CHECK(call.content == "Let me check.");
  CHECK_FALSE(gs::extract_tool_call("```tool_call\n{\"name\": \"get_weather\", \"argu").found);

  const auto meta = gs::make_meta(gs::api_kind::chat, "m");
  for (std::size_t piece : {1, 2, 3, 7, 1000}) {
    gs::tool_stream ts(meta, true);
    std::string sse;
    for (std::size_t i = 0; i < text.size(); i += piece) sse += ts.on_text(text.substr(i, piece));
    std::string finish = "stop";
    sse += ts.on_finish(finish);
    CHECK(finish == "tool_calls");
    std::string content, args;
    int headers = 0;
    for (const auto& e : events(sse)) {
      const auto& d = e["choices"][0]["delta"];
      if (d.contains("content")) content += d["content"].get<std::string>();
      if (!d.contains("tool_calls")) continue;
      const auto& tc = d["tool_calls"][0];
      CHECK(tc["index"] == 0);
      if (tc.contains("id")) {
        ++headers;
        CHECK(args.empty());
        CHECK(tc["function"]["name"] == "get_weather");
        CHECK(tc["type"] == "function");
      }
      args += tc["function"]["arguments"].get<std::string>();
    }
    INFO("piece " << piece);
    CHECK(headers == 1);
    CHECK(content == "Let me check.\n");
    CHECK(json::parse(args) == json::parse(call.arguments));
  }
  // Text without a call streams as content, with nothing held back at the end.
  gs::tool_stream ts(meta, true);
  std::string sse = ts.on_text("Sunny, `code` and ``");
  std::string finish = "stop";
  sse += ts.on_finish(finish);
  CHECK(finish == "stop");
  std::string content;
  for (const auto& e : events(sse)) content += e["choices"][0]["delta"].value("content", "");
  CHECK(content == "Sunny, `code` and ``");
}
