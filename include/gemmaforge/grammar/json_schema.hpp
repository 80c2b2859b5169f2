#pragma once
// JSON Schema -> compiled_grammar, for the subset OpenAI's structured outputs accept in strict
// mode: type (object, array, string, number, integer, boolean, null, or a list of them), properties,
// required, additionalProperties (false, true or absent: only declared keys are generated either
// way), items, minItems, maxItems, enum, const, anyOf, $ref into $defs/definitions (recursion
// allowed), and the annotations title, description, default, examples, $comment, $schema, $id.
// Any other keyword is refused with schema_error naming it: silently ignoring "pattern" or
// "minimum" would produce output that does not validate.
//
// Objects are generated with their properties in schema order (as OpenAI does); properties not
// listed in `required` may be left out. json_object_grammar() is OpenAI's `json_object` mode:
// any JSON object.
#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/grammar/grammar.hpp>

namespace gemmaforge::grammar {

// A schema this compiler cannot enforce. `keyword` is the JSON Schema keyword at fault (empty
// when the schema is malformed rather than unsupported), `path` where it is (a JSON pointer).
class schema_error : public std::runtime_error {
 public:
  schema_error(std::string keyword, std::string path, const std::string& message)
      : std::runtime_error(message), keyword_(std::move(keyword)), path_(std::move(path)) {}
  const std::string& keyword() const { return keyword_; }
  const std::string& path() const { return path_; }

 private:
  std::string keyword_, path_;
};

// Bounds on what one schema may compile to, so a request cannot make the server do unbounded work.
struct schema_limits {
  std::int32_t max_nodes = 4096;
  std::int32_t max_properties = 256;     // per object
  std::int32_t max_literals = 1024;      // per enum
  std::size_t max_literal_bytes = 4096;  // one enum/const value or key, as JSON text
  int max_nesting = 64;                  // schema nesting (not the output's: see matcher.hpp)
};

namespace detail {

template <class Json>
class schema_compiler {
 public:
  schema_compiler(const Json& root, schema_limits lim) : root_(root), lim_(lim) {}

  compiled_grammar run() {
    g_.root = compile(root_, "", 0);
    build_choice_tables();
    g_.finish();
    return std::move(g_);
  }

  // Any JSON object (json_object mode).
  compiled_grammar any_object() {
    g_.root = any_object_node();
    build_choice_tables();
    g_.finish();
    return std::move(g_);
  }

 private:
  using json = Json;

  [[noreturn]] static void fail(const std::string& keyword, const std::string& path, const std::string& what) {
    throw schema_error(keyword, path.empty() ? "#" : "#" + path, what);
  }
  static std::string where(const std::string& path) { return path.empty() ? "the schema's root" : "#" + path; }

  std::int32_t add(node n) {
    if (std::int32_t(g_.nodes.size()) >= lim_.max_nodes)
      fail("", "", "the schema compiles to more than " + std::to_string(lim_.max_nodes) + " grammar nodes");
    g_.nodes.push_back(n);
    return std::int32_t(g_.nodes.size() - 1);
  }

  std::int32_t literal_node(const std::vector<std::string>& texts, const std::string& path, const char* kw) {
    if (texts.empty()) fail(kw, path, std::string("'") + kw + "' at " + where(path) + " must not be empty");
    if (std::int32_t(texts.size()) > lim_.max_literals)
      fail(kw, path, std::string("'") + kw + "' at " + where(path) + " has more than " + std::to_string(lim_.max_literals) + " values");
    node n;
    n.kind = node_kind::literals;
    n.first_literal = std::int32_t(g_.literals.size());
    n.n_literals = std::int32_t(texts.size());
    for (const auto& t : texts) {
      if (t.size() > lim_.max_literal_bytes)
        fail(kw, path, std::string("a value of '") + kw + "' at " + where(path) + " is longer than " +
                           std::to_string(lim_.max_literal_bytes) + " bytes as JSON");
      g_.literals.push_back(t);
    }
    return add(n);
  }

  static std::string dump(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::strict); }

  std::int32_t any_value_node() {
    if (any_value_ >= 0) return any_value_;
    any_value_ = add(node{.kind = node_kind::choice});
    const std::int32_t obj = add(node{.kind = node_kind::object, .any_keys = true, .items = any_value_});
    const std::int32_t arr = add(node{.kind = node_kind::array, .items = any_value_});
    const std::int32_t str = add(node{.kind = node_kind::string});
    const std::int32_t num = add(node{.kind = node_kind::number});
    const std::int32_t lit = literal_node({"true", "false", "null"}, "", "type");
    g_.nodes[std::size_t(obj)].first_property = str;  // an any-key object's keys
    choices_.push_back({any_value_, {obj, arr, str, num, lit}, ""});
    any_object_ = obj;
    return any_value_;
  }
  std::int32_t any_object_node() {
    any_value_node();
    return any_object_;
  }

  std::int32_t compile(const json& s, const std::string& path, int depth) {
    if (depth > lim_.max_nesting) fail("", path, "the schema is nested deeper than " + std::to_string(lim_.max_nesting) + " levels");
    if (s.is_boolean()) {
      if (s.template get<bool>()) return any_value_node();
      fail("", path, "the schema 'false' at " + where(path) + " accepts nothing");
    }
    if (!s.is_object()) fail("", path, "the schema at " + where(path) + " must be an object");
    static const char* const known[] = {"type", "properties", "required", "additionalProperties", "items", "minItems",
                                        "maxItems", "enum", "const", "anyOf", "$ref", "$defs", "definitions", "title",
                                        "description", "default", "examples", "$comment", "$schema", "$id", "strict"};
    for (const auto& [k, v] : s.items()) {
      bool ok = false;
      for (const char* kn : known) ok = ok || k == kn;
      if (!ok)
        fail(k, std::string(path).append("/").append(k), "unsupported JSON Schema keyword '" + k + "' at " + where(path) +
                                    " (supported: type, properties, required, additionalProperties, items, minItems, maxItems, "
                                    "enum, const, anyOf, $ref, $defs)");
    }
    if (const auto r = s.find("$ref"); r != s.end()) return compile_ref(*r, path + "/$ref", depth);
    if (const auto c = s.find("const"); c != s.end()) return literal_node({dump(*c)}, path + "/const", "const");
    if (const auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array()) fail("enum", path + "/enum", "'enum' at " + where(path) + " must be an array");
      std::vector<std::string> texts;
      for (const auto& v : *e) texts.push_back(dump(v));
      return literal_node(texts, path + "/enum", "enum");
    }
    if (const auto a = s.find("anyOf"); a != s.end()) {
      if (!a->is_array() || a->empty()) fail("anyOf", path + "/anyOf", "'anyOf' at " + where(path) + " must be a non-empty array");
      if (s.contains("type")) fail("anyOf", path + "/anyOf", "'anyOf' next to 'type' at " + where(path) + " is not supported");
      std::vector<std::int32_t> alts;
      for (std::size_t i = 0; i < a->size(); ++i) alts.push_back(compile((*a)[i], path + "/anyOf/" + std::to_string(i), depth + 1));
      return choice_node(alts, path + "/anyOf");
    }
    const auto t = s.find("type");
    if (t == s.end()) {
      for (const char* k : {"properties", "required", "additionalProperties"})
        if (s.contains(k)) return compile_type(s, "object", path, depth);
      if (s.contains("items")) return compile_type(s, "array", path, depth);
      return any_value_node();  // {} accepts any value
    }
    if (t->is_string()) return compile_type(s, t->template get<std::string>(), path, depth);
    if (!t->is_array() || t->empty()) fail("type", path + "/type", "'type' at " + where(path) + " must be a string or a non-empty array");
    std::vector<std::int32_t> alts;
    for (const auto& tn : *t) {
      if (!tn.is_string()) fail("type", path + "/type", "'type' at " + where(path) + " must list type names");
      alts.push_back(compile_type(s, tn.template get<std::string>(), path, depth));
    }
    return alts.size() == 1 ? alts[0] : choice_node(alts, path + "/type");
  }

  std::int32_t choice_node(const std::vector<std::int32_t>& alts, const std::string& path) {
    if (alts.size() == 1) return alts[0];
    const std::int32_t id = add(node{.kind = node_kind::choice});
    choices_.push_back({id, alts, path});
    return id;
  }

  std::int32_t compile_ref(const json& r, const std::string& path, int depth) {
    if (!r.is_string()) fail("$ref", path, "'$ref' at " + where(path) + " must be a string");
    const std::string ref = r.template get<std::string>();
    if (const auto it = refs_.find(ref); it != refs_.end()) return it->second;
    std::string name;
    const json* defs = nullptr;
    for (const char* prefix : {"#/$defs/", "#/definitions/"}) {
      const std::string p = prefix;
      if (ref.rfind(p, 0) == 0) {
        name = ref.substr(p.size());
        const auto d = root_.find(p.substr(2, p.size() - 3));
        if (d != root_.end() && d->is_object()) defs = &*d;
      }
    }
    if (name.empty())
      fail("$ref", path, "'$ref' " + ref + " at " + where(path) + ": only references into the schema's $defs (\"#/$defs/name\") are supported");
    if (!defs || !defs->contains(name)) fail("$ref", path, "'$ref' " + ref + " at " + where(path) + " names no definition");
    // Reserve the node first: a recursive definition refers to itself through refs_.
    const std::int32_t id = add(node{});
    refs_[ref] = id;
    const std::int32_t body = compile((*defs)[name], ref.substr(1), depth + 1);
    g_.nodes[std::size_t(id)] = g_.nodes[std::size_t(body)];
    for (std::size_t i = 0, n = choices_.size(); i < n; ++i)
      if (choices_[i].id == body) choices_.push_back({id, choices_[i].alts, choices_[i].path});
    return id;
  }

  static void no_keywords(const json& s, const std::string& path, const std::string& type, std::initializer_list<const char*> kws) {
    for (const char* k : kws)
      if (s.contains(k)) {
        // Appends, not "literal" + std::string&&: GCC 12's false -Wrestrict (see io/weight_binding.hpp).
        std::string msg = "'";
        msg += k;
        msg += "' does not apply to type ";
        msg += type;
        msg += " at ";
        msg += where(path);
        fail(k, std::string(path).append("/").append(k), msg);
      }
  }

  std::int32_t compile_type(const json& s, const std::string& type, const std::string& path, int depth) {
    if (type == "string") {
      no_keywords(s, path, type, {"properties", "items"});
      return add(node{.kind = node_kind::string});
    }
    if (type == "number") return add(node{.kind = node_kind::number});
    if (type == "integer") return add(node{.kind = node_kind::integer});
    if (type == "boolean") return literal_node({"true", "false"}, path, "type");
    if (type == "null") return literal_node({"null"}, path, "type");
    if (type == "array") return compile_array(s, path, depth);
    if (type == "object") return compile_object(s, path, depth);
    fail("type", path + "/type", "unknown type '" + type + "' at " + where(path));
  }

  std::int32_t compile_array(const json& s, const std::string& path, int depth) {
    node n;
    n.kind = node_kind::array;
    auto count = [&](const char* k, std::int32_t def) {
      const auto it = s.find(k);
      if (it == s.end()) return def;
      if (!it->is_number_integer() || it->template get<std::int64_t>() < 0 || it->template get<std::int64_t>() > (1 << 20))
        fail(k, std::string(path).append("/").append(k), "'" + std::string(k) + "' at " + where(path) + " must be an integer in [0, 1048576]");
      return std::int32_t(it->template get<std::int64_t>());
    };
    n.min_items = count("minItems", 0);
    n.max_items = count("maxItems", -1);
    if (n.max_items >= 0 && n.max_items < n.min_items)
      fail("maxItems", path + "/maxItems", "'maxItems' at " + where(path) + " is below 'minItems'");
    const std::int32_t id = add(n);
    const auto it = s.find("items");
    const std::int32_t items = it == s.end() ? any_value_node() : compile(*it, path + "/items", depth + 1);
    g_.nodes[std::size_t(id)].items = items;
    return id;
  }

  std::int32_t compile_object(const json& s, const std::string& path, int depth) {
    const auto props = s.find("properties");
    const auto add_it = s.find("additionalProperties");
    bool closed = false;
    if (add_it != s.end()) {
      if (!add_it->is_boolean())
        fail("additionalProperties", path + "/additionalProperties",
             "'additionalProperties' at " + where(path) + " must be false or true (a schema is not supported)");
      closed = !add_it->template get<bool>();
    }
    if (props == s.end() && !closed) {
      if (s.contains("required")) fail("required", path + "/required", "'required' at " + where(path) + " names properties that 'properties' does not declare");
      return any_object_node();
    }
    if (props != s.end() && !props->is_object()) fail("properties", path + "/properties", "'properties' at " + where(path) + " must be an object");
    std::vector<std::string> required;
    if (const auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) fail("required", path + "/required", "'required' at " + where(path) + " must be an array of names");
      for (const auto& v : *r) {
        if (!v.is_string()) fail("required", path + "/required", "'required' at " + where(path) + " must be an array of names");
        if (props == s.end() || !props->contains(v.template get<std::string>()))
          fail("required", path + "/required", "'required' at " + where(path) + " names '" + v.template get<std::string>() + "', which 'properties' does not declare");
        required.push_back(v.template get<std::string>());
      }
    }
    const std::int32_t n_props = props == s.end() ? 0 : std::int32_t(props->size());
    if (n_props > lim_.max_properties)
      fail("properties", path + "/properties", "the object at " + where(path) + " has more than " + std::to_string(lim_.max_properties) + " properties");
    // The object's properties are contiguous: collect them before compiling the values (which
    // add properties of their own).
    std::vector<property> mine;
    std::vector<const json*> schemas;
    if (props != s.end())
      for (const auto& [k, v] : props->items()) {
        property p;
        p.key_text = dump(json(k)).substr(1);
        if (p.key_text.size() > lim_.max_literal_bytes) fail("properties", path + "/properties", "a property name at " + where(path) + " is too long");
        p.required = std::find(required.begin(), required.end(), k) != required.end();
        mine.push_back(std::move(p));
        schemas.push_back(&v);
      }
    // nlohmann's json sorts keys; schema order is what the client wrote, which ordered parsing keeps.
    const std::int32_t id = add(node{.kind = node_kind::object, .n_properties = n_props});
    for (std::size_t i = 0; i < mine.size(); ++i) mine[i].value = compile(*schemas[i], path + "/properties/" + mine[i].key_text.substr(0, mine[i].key_text.size() - 1), depth + 1);
    g_.nodes[std::size_t(id)].first_property = std::int32_t(g_.properties.size());
    for (auto& p : mine) g_.properties.push_back(std::move(p));
    return id;
  }

  // First bytes a value of node `id` can start with.
  std::array<bool, 256> first_bytes(std::int32_t id, int guard = 0) const {
    std::array<bool, 256> f{};
    if (guard > 64) return f;
    const node& n = g_.nodes[std::size_t(id)];
    switch (n.kind) {
      case node_kind::object: f['{'] = true; break;
      case node_kind::array: f['['] = true; break;
      case node_kind::string: f['"'] = true; break;
      case node_kind::number:
      case node_kind::integer:
        f['-'] = true;
        for (char c = '0'; c <= '9'; ++c) f[std::uint8_t(c)] = true;
        break;
      case node_kind::literals:
        for (std::int32_t i = 0; i < n.n_literals; ++i) f[std::uint8_t(g_.literals[std::size_t(n.first_literal) + std::size_t(i)][0])] = true;
        break;
      case node_kind::choice:
        for (const auto& c : choices_)
          if (c.id == id)
            for (auto a : c.alts) {
              const auto fa = first_bytes(a, guard + 1);
              for (int b = 0; b < 256; ++b) f[std::size_t(b)] = f[std::size_t(b)] || fa[std::size_t(b)];
            }
        break;
    }
    return f;
  }

  void build_choice_tables() {
    for (const auto& c : choices_) {
      std::array<std::int32_t, 256> table;
      table.fill(-1);
      for (std::size_t a = 0; a < c.alts.size(); ++a) {
        const auto f = first_bytes(c.alts[a]);
        for (int b = 0; b < 256; ++b) {
          if (!f[std::size_t(b)]) continue;
          const std::int32_t other = table[std::size_t(b)];
          if (other >= 0 && other != c.alts[a]) {
            std::size_t oa = 0;
            while (c.alts[oa] != other) ++oa;
            fail(c.path.size() >= 6 && c.path.substr(c.path.size() - 5) == "/type" ? "type" : "anyOf", c.path,
                 "the alternatives " + std::to_string(oa) + " and " + std::to_string(a) + " at " + where(c.path) +
                     " can both start with '" + std::string(1, char(b)) +
                     "': alternatives must differ in their JSON type (e.g. an object or null) to be enforced");
          }
          table[std::size_t(b)] = c.alts[a];
        }
      }
      g_.nodes[std::size_t(c.id)].first_byte_table = std::int32_t(g_.first_byte_tables.size());
      g_.first_byte_tables.push_back(table);
    }
  }

  struct choice_info {
    std::int32_t id;
    std::vector<std::int32_t> alts;
    std::string path;
  };

  const json& root_;
  schema_limits lim_;
  compiled_grammar g_;
  std::map<std::string, std::int32_t> refs_;
  std::vector<choice_info> choices_;
  std::int32_t any_value_ = -1, any_object_ = -1;
};

}  // namespace detail

// `schema` should be parsed with nlohmann::ordered_json's key order kept (the order properties
// are generated in); a plain json works too (keys then come sorted).
template <class Json>
compiled_grammar compile_json_schema(const Json& schema, schema_limits lim = {}) {
  return detail::schema_compiler<Json>(schema, lim).run();
}

inline compiled_grammar json_object_grammar() {
  static const nlohmann::json empty = nlohmann::json::object();
  return detail::schema_compiler<nlohmann::json>(empty, {}).any_object();
}

}  // namespace gemmaforge::grammar
