#pragma once
// A compiled JSON grammar: a graph of value nodes that the matcher (grammar/matcher.hpp) walks.
//
// It is not a general context-free grammar: every node is one kind of JSON value, and the
// pushdown automaton that follows it keeps one frame per open value. That is enough for the
// JSON-Schema subset we accept (grammar/json_schema.hpp) and keeps the matcher deterministic: one
// state, no set of stacks, so a token mask is one walk of the token trie.
//
// Choices (anyOf, a type list) must be told apart by the first byte of the value: "string or
// null", "object or null", "number or string" are; two different objects are not, and the
// compiler refuses them with a message saying so.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gemmaforge::grammar {

enum class node_kind : std::uint8_t {
  object,    // declared properties in schema order (or any keys when any_keys)
  array,     // items of one node, min_items..max_items
  string,    // any JSON string
  number,    // any JSON number
  integer,   // an optional '-' then digits (no fraction, no exponent)
  literals,  // one of a list of exact JSON texts (enum, const, true/false, null)
  choice,    // one of several nodes, picked by the value's first byte
};

struct property {
  std::string key_text;  // the key as JSON text without the opening quote, closing quote included
  std::int32_t value = -1;
  bool required = true;
};

struct node {
  node_kind kind = node_kind::string;
  // object
  std::int32_t first_property = 0, n_properties = 0;  // any_keys: first_property is the keys' string node
  bool any_keys = false;      // any string key, values of node `items` (json_object mode)
  // array (and the values of an any_keys object)
  std::int32_t items = -1;
  std::int32_t min_items = 0, max_items = -1;  // -1 = unbounded
  // literals
  std::int32_t first_literal = 0, n_literals = 0;
  // choice: alternative node per first byte (-1 = none)
  std::int32_t first_byte_table = -1;
  // literals: when >= 0, literal i does not end the value but continues as the declared object
  // continuations[first_continuation + i], its first key already read (the literal's text ends
  // with that key): how a tool call's name selects its arguments' schema (tool_call_grammar.hpp).
  std::int32_t first_continuation = -1;
};

struct compiled_grammar {
  std::vector<node> nodes;
  std::vector<property> properties;
  std::vector<std::string> literals;  // exact JSON texts
  std::vector<std::array<std::int32_t, 256>> first_byte_tables;
  std::vector<std::int32_t> continuations;
  std::int32_t root = -1;

  // Suffix of required-ness: next_required[first_property + i] = index (within the object) of the
  // first required property at or after i, or n_properties. Filled by finish().
  std::vector<std::int32_t> next_required;

  void finish() {
    next_required.assign(properties.size(), 0);
    for (const node& n : nodes) {
      if (n.kind != node_kind::object || n.any_keys) continue;
      std::int32_t next = n.n_properties;
      for (std::int32_t i = n.n_properties - 1; i >= 0; --i) {
        if (properties[std::size_t(n.first_property) + std::size_t(i)].required) next = i;
        next_required[std::size_t(n.first_property) + std::size_t(i)] = next;
      }
    }
  }
  std::int32_t first_required_from(const node& n, std::int32_t i) const {
    return i >= n.n_properties ? n.n_properties : next_required[std::size_t(n.first_property) + std::size_t(i)];
  }
  // Copies `src` into this grammar; returns its root's index here.
  std::int32_t append(const compiled_grammar& src) {
    const auto nodes0 = std::int32_t(nodes.size()), props0 = std::int32_t(properties.size()),
               lits0 = std::int32_t(literals.size()), tables0 = std::int32_t(first_byte_tables.size()),
               conts0 = std::int32_t(continuations.size());
    for (node n : src.nodes) {
      if (n.kind == node_kind::object) n.first_property += n.any_keys ? nodes0 : props0;
      if (n.items >= 0) n.items += nodes0;
      n.first_literal += lits0;
      if (n.first_byte_table >= 0) n.first_byte_table += tables0;
      if (n.first_continuation >= 0) n.first_continuation += conts0;
      nodes.push_back(n);
    }
    for (property p : src.properties) {
      p.value += nodes0;
      properties.push_back(std::move(p));
    }
    literals.insert(literals.end(), src.literals.begin(), src.literals.end());
    for (auto t : src.first_byte_tables) {
      for (auto& e : t)
        if (e >= 0) e += nodes0;
      first_byte_tables.push_back(t);
    }
    for (auto c : src.continuations) continuations.push_back(c + nodes0);
    return src.root + nodes0;
  }

  std::uint64_t bytes() const {
    std::uint64_t b = nodes.size() * sizeof(node) + first_byte_tables.size() * sizeof(decltype(first_byte_tables)::value_type) +
                      next_required.size() * sizeof(std::int32_t);
    for (const auto& p : properties) b += sizeof(p) + p.key_text.size();
    for (const auto& l : literals) b += sizeof(std::string) + l.size();
    return b;
  }
};

}  // namespace gemmaforge::grammar
