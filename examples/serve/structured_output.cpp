// response_format parsing: see structured_output.hpp.
#include "structured_output.hpp"

#include <gemmaforge/grammar/grammar_constraint.hpp>
#include <gemmaforge/grammar/json_schema.hpp>

#include "openai_request.hpp"

namespace gemmaforge::serve {

using ojson = nlohmann::ordered_json;

std::shared_ptr<const grammar::compiled_grammar> compile_schema_param(const ojson& schema, const std::string& where) {
  try {
    return std::make_shared<const grammar::compiled_grammar>(grammar::compile_json_schema(schema));
  } catch (const grammar::schema_error& e) {
    // The keyword is the machine-readable code's detail; the message names it and where it is.
    const std::string code = e.keyword().empty() ? "invalid_schema" : "unsupported_schema_keyword";
    throw invalid_request("'" + where + "': " + e.what(), where.substr(0, where.find_first_of(".[")), code);
  }
}

structured_output parse_response_format(const ojson* rf) {
  structured_output out;
  if (!rf || rf->is_null()) return out;
  if (!rf->is_object()) throw invalid_request("'response_format' must be an object", "response_format");
  const auto type = rf->find("type");
  if (type == rf->end() || !type->is_string())
    throw invalid_request("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"", "response_format");
  const std::string t = type->get<std::string>();
  if (t == "text") return out;
  if (t == "json_object") {
    out.type = structured_output::format::json_object;
    out.grammar = std::make_shared<const grammar::compiled_grammar>(grammar::json_object_grammar());
    return out;
  }
  if (t != "json_schema")
    throw invalid_request("'response_format.type' is '" + t + "': expected \"text\", \"json_object\" or \"json_schema\"", "response_format");
  const auto js = rf->find("json_schema");
  if (js == rf->end() || !js->is_object())
    throw invalid_request("'response_format.json_schema' is required for type json_schema and must be an object", "response_format");
  out.type = structured_output::format::json_schema;
  if (const auto n = js->find("name"); n != js->end()) {
    if (!n->is_string()) throw invalid_request("'response_format.json_schema.name' must be a string", "response_format");
    out.name = n->get<std::string>();
  }
  if (const auto s = js->find("strict"); s != js->end() && !s->is_null() && !s->is_boolean())
    throw invalid_request("'response_format.json_schema.strict' must be a boolean", "response_format");
  const auto schema = js->find("schema");
  if (schema == js->end() || !(schema->is_object() || schema->is_boolean()))
    throw invalid_request("'response_format.json_schema.schema' is required and must be an object", "response_format");
  out.grammar = compile_schema_param(*schema, "response_format.json_schema.schema");
  return out;
}

std::shared_ptr<token_constraint> make_constraint(const openai_request& r, const std::shared_ptr<const grammar::token_trie>& trie) {
  if (!trie) {
    if (r.response_format.grammar || r.tools.active())
      throw invalid_request("structured output and tools need the model's tokenizer, which this checkpoint lacks",
                            r.tools.active() ? "tools" : "response_format");
    return nullptr;
  }
  if (r.tools.active()) return std::make_shared<grammar::grammar_constraint>(r.tools.call_grammar, trie, r.tools.frame());
  if (r.response_format.grammar) return std::make_shared<grammar::grammar_constraint>(r.response_format.grammar, trie);
  return nullptr;
}

}  // namespace gemmaforge::serve
