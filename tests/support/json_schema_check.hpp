#pragma once
// A small JSON-Schema validator for the subset grammar/json_schema.hpp compiles, written from the
// specification (not from the compiler) so the grammar tests check outputs against an independent
// reading: type, properties, required, additionalProperties, items, minItems, maxItems, enum,
// const, anyOf, $ref into $defs/definitions.
#include <string>

#include <nlohmann/json.hpp>

namespace gemmaforge::testing {

// Empty string: valid; otherwise why not (the first failure found).
inline std::string schema_violation(const nlohmann::json& v, const nlohmann::json& s, const nlohmann::json& root,
                                    const std::string& at = "$") {
  using json = nlohmann::json;
  if (s.is_boolean()) return s.get<bool>() ? "" : at + ": schema false";
  if (const auto r = s.find("$ref"); r != s.end()) {
    const std::string ref = r->get<std::string>();
    const auto slash = ref.rfind('/');
    const std::string bucket = ref.substr(2, slash - 2), name = ref.substr(slash + 1);
    return schema_violation(v, root.at(bucket).at(name), root, at);
  }
  if (const auto c = s.find("const"); c != s.end() && v != *c) return at + ": not the const " + c->dump();
  if (const auto e = s.find("enum"); e != s.end()) {
    bool found = false;
    for (const auto& x : *e) found = found || x == v;
    if (!found) return at + ": not in enum";
  }
  if (const auto a = s.find("anyOf"); a != s.end()) {
    for (const auto& alt : *a)
      if (schema_violation(v, alt, root, at).empty()) return "";
    return at + ": matches no anyOf alternative";
  }
  if (const auto t = s.find("type"); t != s.end()) {
    auto is = [&](const std::string& name) {
      if (name == "object") return v.is_object();
      if (name == "array") return v.is_array();
      if (name == "string") return v.is_string();
      if (name == "number") return v.is_number();
      if (name == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == double(std::int64_t(v.get<double>())));
      if (name == "boolean") return v.is_boolean();
      if (name == "null") return v.is_null();
      return false;
    };
    bool ok = false;
    if (t->is_string()) ok = is(t->get<std::string>());
    else
      for (const auto& n : *t) ok = ok || is(n.get<std::string>());
    if (!ok) return at + ": wrong type, want " + t->dump() + ", got " + v.dump();
  }
  if (v.is_object()) {
    const json props = s.value("properties", json::object());
    for (const auto& r : s.value("required", json::array()))
      if (!v.contains(r.get<std::string>())) return at + ": missing required " + r.get<std::string>();
    for (const auto& [k, x] : v.items()) {
      if (props.contains(k)) {
        if (auto e = schema_violation(x, props[k], root, std::string(at).append(".").append(k)); !e.empty()) return e;
      } else if (s.contains("additionalProperties") && s["additionalProperties"] == false) {
        return std::string(at).append(": additional property ").append(k);
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<std::size_t>()) return at + ": fewer than minItems";
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<std::size_t>()) return at + ": more than maxItems";
    if (const auto it = s.find("items"); it != s.end())
      for (std::size_t i = 0; i < v.size(); ++i)
        if (auto e = schema_violation(v[i], *it, root, at + "[" + std::to_string(i) + "]"); !e.empty()) return e;
  }
  return "";
}

}  // namespace gemmaforge::testing
