#pragma once
// The grammar of one tool call, as the server's prompt asks for it (docs/serving.md, tools):
//   {"name": "<function>", "arguments": <the function's parameters schema>}
// The start, up to "arguments", is one literal per function, so the name the model writes picks
// that function's argument schema (a literal with a continuation, grammar.hpp): the arguments are
// enforced, not just the JSON shape.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/grammar/grammar.hpp>

namespace gemmaforge::grammar {

struct tool_function_grammar {
  std::string name;
  const compiled_grammar* parameters = nullptr;  // compiled parameters schema
};

inline compiled_grammar tool_call_grammar(const std::vector<tool_function_grammar>& functions) {
  compiled_grammar g;
  std::vector<std::int32_t> objects;
  for (const auto& f : functions) {
    const std::int32_t args = g.append(*f.parameters);
    property p;
    p.key_text = "arguments\"";
    p.value = args;
    p.required = true;
    node obj;
    obj.kind = node_kind::object;
    obj.first_property = std::int32_t(g.properties.size());
    obj.n_properties = 1;
    g.properties.push_back(p);
    g.nodes.push_back(obj);
    objects.push_back(std::int32_t(g.nodes.size() - 1));
  }
  node lit;
  lit.kind = node_kind::literals;
  lit.first_literal = std::int32_t(g.literals.size());
  lit.n_literals = std::int32_t(functions.size());
  lit.first_continuation = std::int32_t(g.continuations.size());
  for (std::size_t i = 0; i < functions.size(); ++i) {
    g.literals.push_back("{\"name\": " + nlohmann::json(functions[i].name).dump() + ", \"arguments\"");
    g.continuations.push_back(objects[i]);
  }
  g.nodes.push_back(lit);
  g.root = std::int32_t(g.nodes.size() - 1);
  g.finish();
  return g;
}

}  // namespace gemmaforge::grammar
