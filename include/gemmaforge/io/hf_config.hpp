#pragma once
// hf_config: the facts of a Hugging Face config.json that decide which descriptor a checkpoint
// is and whether it matches. Accepts model_type "gemma", "gemma2", "gemma3_text", and "gemma3"
// (the multimodal wrapper: the text model's facts are under "text_config"), and both spellings of
// RoPE parameters: the flat "rope_theta"/"rope_local_base_freq"/"rope_scaling" of transformers 4.x
// and the per-layer-type "rope_parameters" of transformers 5.x. Missing optional fields take the
// defaults of the transformers config class for that model type.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/io/mmap_file.hpp>
#include <gemmaforge/io/safetensors.hpp>
#include <gemmaforge/model/descriptor.hpp>

namespace gemmaforge {

struct hf_config {
  std::string file;          // for messages
  std::string model_type;    // as written at the top level ("gemma3" for the multimodal wrapper)
  family arch = family::gemma1;
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t max_position_embeddings = 0;
  std::optional<std::int64_t> sliding_window;       // Gemma 2/3
  std::optional<double> query_pre_attn_scalar;      // Gemma 2/3 (Gemma 1: head_dim)
  std::optional<double> attn_logit_softcapping;     // Gemma 2 (null/absent: none)
  std::optional<double> final_logit_softcapping;
  double rope_theta = 10000.0;                      // global layers
  std::optional<double> rope_local_theta;           // Gemma 3 local layers
  double rope_linear_factor = 1.0;                  // Gemma 3 4B+: 8 on global layers
  std::vector<std::string> layer_types;             // "sliding_attention" / "full_attention" when given
  std::optional<std::int64_t> sliding_window_pattern;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = true;
  std::string name_or_path;  // "_name_or_path", a hint for telling same-shaped fine-tunes apart

  static hf_config load(const std::filesystem::path& path) {
    const mapped_file m = mapped_file::open(path);
    return parse(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()), m.path());
  }

  static hf_config parse(std::string_view text, std::string file = "config.json") {
    const nlohmann::json root = detail::parse_json(text, file);
    hf_config c;
    c.file = file;
    auto fail = [&](const std::string& what) -> void { throw error(errc::format, file + ": " + what); };
    if (!root.is_object()) fail("not a JSON object");
    c.model_type = string_field(root, "model_type", file).value_or("");
    const nlohmann::json* cfg = &root;
    std::string effective = c.model_type;
    if (c.model_type == "gemma3") {
      // Gemma3ForConditionalGeneration: the language model's config is nested.
      const auto tc = root.find("text_config");
      if (tc == root.end() || !tc->is_object()) fail("model_type gemma3 without a \"text_config\" object");
      cfg = &*tc;
      effective = "gemma3_text";
    }
    if (effective == "gemma") c.arch = family::gemma1;
    else if (effective == "gemma2") c.arch = family::gemma2;
    else if (effective == "gemma3_text") c.arch = family::gemma3;
    else
      throw error(errc::model_mismatch, file + ": model_type " + quote_for_message(c.model_type) +
                                            " is not a Gemma text model (gemma, gemma2, gemma3_text, gemma3)");
    const nlohmann::json& j = *cfg;

    // Defaults are those of transformers' GemmaConfig / Gemma2Config / Gemma3TextConfig.
    const bool g1 = c.arch == family::gemma1, g2 = c.arch == family::gemma2;
    c.vocab_size = int_field(j, "vocab_size", file).value_or(g1 || g2 ? 256000 : 262208);
    c.hidden_size = require(int_field(j, "hidden_size", file), "hidden_size", file);
    c.intermediate_size = require(int_field(j, "intermediate_size", file), "intermediate_size", file);
    c.num_hidden_layers = require(int_field(j, "num_hidden_layers", file), "num_hidden_layers", file);
    c.num_attention_heads = require(int_field(j, "num_attention_heads", file), "num_attention_heads", file);
    c.num_key_value_heads = int_field(j, "num_key_value_heads", file).value_or(c.num_attention_heads);
    c.head_dim = int_field(j, "head_dim", file).value_or(c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
    c.max_position_embeddings = int_field(j, "max_position_embeddings", file).value_or(g1 || g2 ? 8192 : 131072);
    for (auto [name, v] : {std::pair{"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                           {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
                           {"num_key_value_heads", c.num_key_value_heads}, {"head_dim", c.head_dim},
                           {"vocab_size", c.vocab_size}})
      if (v <= 0 || v > (std::int64_t(1) << 31)) fail(std::string(name) + " = " + std::to_string(v) + " is not a positive size");

    if (!g1) {
      c.sliding_window = int_field(j, "sliding_window", file).value_or(4096);
      c.query_pre_attn_scalar = float_field(j, "query_pre_attn_scalar", file).value_or(256.0);
      c.sliding_window_pattern = int_field(j, "sliding_window_pattern", file);
      if (!c.sliding_window_pattern) c.sliding_window_pattern = int_field(j, "_sliding_window_pattern", file);
    }
    c.attn_logit_softcapping = float_field(j, "attn_logit_softcapping", file);
    c.final_logit_softcapping = float_field(j, "final_logit_softcapping", file);
    if (g2 && !j.contains("attn_logit_softcapping")) c.attn_logit_softcapping = 50.0;
    if (g2 && !j.contains("final_logit_softcapping")) c.final_logit_softcapping = 30.0;
    c.rms_norm_eps = float_field(j, "rms_norm_eps", file).value_or(1e-6);
    if (auto t = j.find("tie_word_embeddings"); t != j.end() && t->is_boolean()) c.tie_word_embeddings = t->get<bool>();
    else if (auto rt = root.find("tie_word_embeddings"); rt != root.end() && rt->is_boolean()) c.tie_word_embeddings = rt->get<bool>();
    c.name_or_path = string_field(root, "_name_or_path", file).value_or("");

    if (auto lt = j.find("layer_types"); lt != j.end() && !lt->is_null()) {
      if (!lt->is_array()) fail("layer_types is not an array");
      for (const auto& e : *lt) {
        if (!e.is_string()) fail("layer_types has a non-string entry");
        c.layer_types.push_back(e.get<std::string>());
      }
    }

    // RoPE: transformers 5 writes rope_parameters, either flat ({"rope_theta": ...}) or keyed by
    // layer type ({"full_attention": {...}, "sliding_attention": {...}}); 4.x writes rope_theta,
    // rope_local_base_freq and rope_scaling ({"rope_type": "linear", "factor": 8}).
    if (!g1 && !g2) c.rope_local_theta = 10000.0;
    c.rope_theta = float_field(j, "rope_theta", file).value_or(g1 || g2 ? 10000.0 : 1000000.0);
    if (auto lb = float_field(j, "rope_local_base_freq", file)) c.rope_local_theta = *lb;
    auto read_scaling = [&](const nlohmann::json& s) {
      if (!s.is_object()) return;
      const std::string type = string_field(s, "rope_type", file).value_or(string_field(s, "type", file).value_or("default"));
      if (type == "linear") c.rope_linear_factor = float_field(s, "factor", file).value_or(1.0);
      else if (type != "default") fail("rope type " + quote_for_message(type) + " is not supported (default or linear)");
    };
    if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) read_scaling(*rs);
    if (auto rp = j.find("rope_parameters"); rp != j.end() && rp->is_object()) {
      if (rp->contains("full_attention") || rp->contains("sliding_attention")) {
        if (auto fa = rp->find("full_attention"); fa != rp->end() && fa->is_object()) {
          if (auto t = float_field(*fa, "rope_theta", file)) c.rope_theta = *t;
          read_scaling(*fa);
        }
        if (auto sa = rp->find("sliding_attention"); sa != rp->end() && sa->is_object())
          if (auto t = float_field(*sa, "rope_theta", file)) c.rope_local_theta = *t;
      } else {
        if (auto t = float_field(*rp, "rope_theta", file)) c.rope_theta = *t;
        read_scaling(*rp);
      }
    }
    return c;
  }

 private:
  static std::optional<std::int64_t> int_field(const nlohmann::json& j, const char* key, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (it->is_number_integer()) return it->get<std::int64_t>();
    if (it->is_number_unsigned() && it->get<std::uint64_t>() <= std::uint64_t(INT64_MAX)) return std::int64_t(it->get<std::uint64_t>());
    if (it->is_number_float()) {
      const double d = it->get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return std::int64_t(d);
    }
    throw error(errc::format, file + ": \"" + key + "\" must be an integer, got " + it->dump());
  }
  static std::optional<double> float_field(const nlohmann::json& j, const char* key, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (it->is_number()) {
      const double d = it->get<double>();
      if (std::isfinite(d)) return d;
    }
    throw error(errc::format, file + ": \"" + key + "\" must be a finite number, got " + it->dump());
  }
  static std::optional<std::string> string_field(const nlohmann::json& j, const char* key, const std::string& file) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) throw error(errc::format, file + ": \"" + key + "\" must be a string, got " + it->dump());
    return it->get<std::string>();
  }
  static std::int64_t require(std::optional<std::int64_t> v, const char* key, const std::string& file) {
    if (!v) throw error(errc::format, file + ": \"" + key + "\" is missing");
    return *v;
  }
};

}  // namespace gemmaforge
