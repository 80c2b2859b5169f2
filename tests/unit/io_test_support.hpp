#pragma once
// Test helpers for the io/tokenizer tests: a GGUF writer with knobs for building broken files,
// a safetensors + config.json writer for synthetic HF checkpoints of any descriptor, temp dirs.
// The writers are deliberately separate from the readers (nothing here calls io/), so a bug in
// a reader cannot be mirrored by the file that tests it.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/model/descriptor.hpp>

#include "support/model_path.hpp"

namespace gf_test {

namespace fs = std::filesystem;
using bytes = std::vector<std::byte>;

// The real Gemma 3 270M file: $GF_MODEL_PATH, else tests/support/model_path.hpp's rule.
inline std::string model_path() {
  if (const char* p = std::getenv("GF_MODEL_PATH")) return p;
  return gemmaforge::testing::real_model_path().string();
}

class temp_dir {
 public:
  temp_dir() : path_(unique_path()) { fs::create_directories(path_); }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  static fs::path unique_path() {
    std::random_device rd;
    return fs::temp_directory_path() / ("gemmaforge-test-" + std::to_string(rd()) + std::to_string(rd()));
  }
  fs::path path_;
};

inline void write_file(const fs::path& p, const void* data, std::size_t n) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char*>(data), std::streamsize(n));
}
inline void write_file(const fs::path& p, const bytes& b) { write_file(p, b.data(), b.size()); }
inline void write_file(const fs::path& p, std::string_view s) { write_file(p, s.data(), s.size()); }
inline bytes read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// ------------------------------------------------------------------------------------ GGUF
class gguf_builder {
 public:
  enum type : std::uint32_t { u8 = 0, i8, u16, i16, u32, i32, f32, boolean, string, array, u64, i64, f64 };

  // Raw payload helpers (little-endian).
  template <class T>
  static void put(bytes& b, T v) {
    const std::size_t n = b.size();
    b.resize(n + sizeof(T));
    std::memcpy(b.data() + n, &v, sizeof(T));
  }
  static void put_str(bytes& b, std::string_view s) {
    put<std::uint64_t>(b, s.size());
    const std::size_t n = b.size();
    b.resize(n + s.size());
    if (!s.empty()) std::memcpy(b.data() + n, s.data(), s.size());
  }

  // A kv with an already-encoded value.
  gguf_builder& kv_raw(std::string_view key, std::uint32_t t, bytes value) {
    bytes b;
    put_str(b, key);
    put<std::uint32_t>(b, t);
    b.insert(b.end(), value.begin(), value.end());
    kvs_.push_back(std::move(b));
    return *this;
  }
  template <class T>
  gguf_builder& kv(std::string_view key, std::uint32_t t, T v) {
    bytes b;
    put<T>(b, v);
    return kv_raw(key, t, std::move(b));
  }
  gguf_builder& kv_u32(std::string_view key, std::uint32_t v) { return kv(key, u32, v); }
  gguf_builder& kv_f32(std::string_view key, float v) { return kv(key, f32, v); }
  gguf_builder& kv_bool(std::string_view key, bool v) { return kv(key, boolean, std::uint8_t(v)); }
  gguf_builder& kv_str(std::string_view key, std::string_view v) {
    bytes b;
    put_str(b, v);
    return kv_raw(key, string, std::move(b));
  }
  template <class T>
  gguf_builder& kv_array(std::string_view key, std::uint32_t elem, const std::vector<T>& xs) {
    bytes b;
    put<std::uint32_t>(b, elem);
    put<std::uint64_t>(b, xs.size());
    for (const T& x : xs) put<T>(b, x);
    return kv_raw(key, array, std::move(b));
  }
  gguf_builder& kv_str_array(std::string_view key, const std::vector<std::string>& xs) {
    bytes b;
    put<std::uint32_t>(b, string);
    put<std::uint64_t>(b, xs.size());
    for (const auto& x : xs) put_str(b, x);
    return kv_raw(key, array, std::move(b));
  }

  struct tensor {
    std::string name;
    std::vector<std::uint64_t> dims;  // fastest first (GGUF order)
    std::uint32_t ggml_type = 0;
    bytes data{};
    std::optional<std::uint64_t> offset{};  // override (for broken files)
  };
  gguf_builder& add_tensor(tensor t) {
    tensors_.push_back(std::move(t));
    return *this;
  }

  std::uint32_t version = 3;
  std::uint32_t alignment = 32;  // used for layout; general.alignment is only written if asked
  std::optional<std::uint64_t> tensor_count_override, kv_count_override;

  bytes build() const {
    bytes b;
    put<std::uint32_t>(b, 0x46554747);
    put<std::uint32_t>(b, version);
    put<std::uint64_t>(b, tensor_count_override.value_or(tensors_.size()));
    put<std::uint64_t>(b, kv_count_override.value_or(kvs_.size()));
    for (const auto& k : kvs_) b.insert(b.end(), k.begin(), k.end());
    std::vector<std::uint64_t> offsets;
    std::uint64_t next = 0;
    for (const auto& t : tensors_) {
      const std::uint64_t off = t.offset.value_or(next);
      offsets.push_back(off);
      next = (std::max(next, off + t.data.size()) + alignment - 1) / alignment * alignment;
      put_str(b, t.name);
      put<std::uint32_t>(b, std::uint32_t(t.dims.size()));
      for (auto d : t.dims) put<std::uint64_t>(b, d);
      put<std::uint32_t>(b, t.ggml_type);
      put<std::uint64_t>(b, off);
    }
    const std::size_t data_start = (b.size() + alignment - 1) / alignment * alignment;
    b.resize(data_start, std::byte{0});
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const auto& t = tensors_[i];
      if (offsets[i] > (std::uint64_t(1) << 30)) continue;  // an absurd offset under test: no data
      const std::size_t at = data_start + offsets[i];
      if (b.size() < at + t.data.size()) b.resize(at + t.data.size(), std::byte{0});
      if (!t.data.empty()) std::memcpy(b.data() + at, t.data.data(), t.data.size());
    }
    return b;
  }

 private:
  std::vector<bytes> kvs_;
  std::vector<tensor> tensors_;
};

// ----------------------------------------------------------------------- synthetic models
// Bytes of n elements / blocks of a format: plain floats drawn from rng for f32/f16/bf16, random
// bytes for block formats (binding never dequantizes).
inline bytes random_tensor_bytes(gemmaforge::tensor_format f, std::uint64_t n_elements, std::mt19937& rng, float scale = 0.1f) {
  using namespace gemmaforge;
  std::normal_distribution<float> nd(0.0f, scale);
  bytes b;
  if (f == tensor_format::f32) {
    for (std::uint64_t i = 0; i < n_elements; ++i) gguf_builder::put<float>(b, nd(rng));
  } else if (f == tensor_format::f16) {
    for (std::uint64_t i = 0; i < n_elements; ++i) gguf_builder::put<std::uint16_t>(b, to_f16(nd(rng)).bits);
  } else if (f == tensor_format::bf16) {
    for (std::uint64_t i = 0; i < n_elements; ++i) gguf_builder::put<std::uint16_t>(b, to_bf16(nd(rng)).bits);
  } else {
    const std::uint64_t nb = n_elements / block_elems(f) * block_bytes(f);
    for (std::uint64_t i = 0; i < nb; ++i) b.push_back(std::byte(rng() & 0xff));
  }
  return b;
}

inline std::uint32_t ggml_id(gemmaforge::tensor_format f) {
  using gemmaforge::tensor_format;
  switch (f) {
    case tensor_format::f32: return 0;
    case tensor_format::f16: return 1;
    case tensor_format::q5_0: return 6;
    case tensor_format::q8_0: return 8;
    case tensor_format::q4_k: return 12;
    case tensor_format::q6_k: return 14;
    case tensor_format::bf16: return 30;
  }
  return 0;
}

struct synth_options {
  int layers = -1;                  // -1: the descriptor's
  gemmaforge::tensor_format matrix_format = gemmaforge::tensor_format::f32;
  gemmaforge::tensor_format norm_format = gemmaforge::tensor_format::f32;
  std::string arch{};               // "": from the descriptor
  std::optional<float> attn_softcap{};  // override the descriptor's (written when > 0)
  std::optional<std::uint32_t> window{};
  bool with_tokenizer = false;
  std::uint32_t seed = 1;
};

// A GGUF of Model's shapes under llama.cpp's names and keys (norms hold w + 1, as converters write).
template <class Model>
gguf_builder synthetic_gguf(const synth_options& o = {}) {
  using namespace gemmaforge;
  std::mt19937 rng(o.seed);
  gguf_builder g;
  const std::string arch = o.arch.empty() ? std::string(to_string(Model::arch)) : o.arch;
  const int L = o.layers < 0 ? Model::n_layers : o.layers;
  g.kv_str("general.architecture", arch);
  g.kv_str("general.name", std::string(Model::name));
  g.kv_u32(arch + ".block_count", std::uint32_t(L));
  g.kv_u32(arch + ".embedding_length", Model::hidden);
  g.kv_u32(arch + ".feed_forward_length", Model::ffn);
  g.kv_u32(arch + ".context_length", Model::max_positions);
  g.kv_u32(arch + ".attention.head_count", Model::heads);
  g.kv_u32(arch + ".attention.head_count_kv", Model::kv_heads);
  g.kv_u32(arch + ".attention.key_length", Model::head_dim);
  g.kv_u32(arch + ".attention.value_length", Model::head_dim);
  g.kv_f32(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
  g.kv_f32(arch + ".rope.freq_base", float(Model::rope::global_theta));
  if (Model::window > 0 || o.window) g.kv_u32(arch + ".attention.sliding_window", o.window.value_or(Model::window));
  if (const float cap = o.attn_softcap.value_or(float(Model::attn_softcap)); cap > 0)
    g.kv_f32(arch + ".attn_logit_softcapping", cap);
  if (Model::final_softcap > 0) g.kv_f32(arch + ".final_logit_softcapping", float(Model::final_softcap));
  if (o.with_tokenizer) {
    // A small SentencePiece-style vocabulary: specials, byte pieces, a few words.
    std::vector<std::string> toks = {"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n"};
    std::vector<std::int32_t> types = {3, 3, 3, 3, 3, 3, 4};
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      toks.push_back(buf);
      types.push_back(6);
    }
    for (const char* w : {"\xE2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "llo", "hello", "\xE2\x96\x81w", "or",
                          "\xE2\x96\x81wor", "ld", "\xE2\x96\x81world", "  "}) {
      toks.push_back(w);
      types.push_back(std::string_view(w) == "  " ? 4 : 1);
    }
    while (toks.size() < std::size_t(Model::vocab)) {
      toks.push_back("<unused" + std::to_string(toks.size()) + ">");
      types.push_back(3);
    }
    std::vector<float> scores(toks.size());
    for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = -float(i);
    g.kv_str("tokenizer.ggml.model", "llama");
    g.kv_str_array("tokenizer.ggml.tokens", toks);
    g.kv_array<float>("tokenizer.ggml.scores", gguf_builder::f32, scores);
    g.kv_array<std::int32_t>("tokenizer.ggml.token_type", gguf_builder::i32, types);
    g.kv_u32("tokenizer.ggml.bos_token_id", 2);
    g.kv_u32("tokenizer.ggml.eos_token_id", 1);
    g.kv_u32("tokenizer.ggml.unknown_token_id", 3);
    g.kv_u32("tokenizer.ggml.padding_token_id", 0);
    g.kv_bool("tokenizer.ggml.add_bos_token", true);
    g.kv_bool("tokenizer.ggml.add_space_prefix", false);
  }
  auto matrix = [&](const std::string& name, std::uint64_t rows, std::uint64_t cols) {
    g.add_tensor({name, {cols, rows}, ggml_id(o.matrix_format), random_tensor_bytes(o.matrix_format, rows * cols, rng)});
  };
  auto norm = [&](const std::string& name, std::uint64_t n) {
    g.add_tensor({name, {n}, ggml_id(o.norm_format), random_tensor_bytes(o.norm_format, n, rng)});
  };
  matrix("token_embd.weight", Model::vocab, Model::hidden);
  norm("output_norm.weight", Model::hidden);
  for (int l = 0; l < L; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    matrix(b + "attn_q.weight", Model::q_dim, Model::hidden);
    matrix(b + "attn_k.weight", Model::kv_dim, Model::hidden);
    matrix(b + "attn_v.weight", Model::kv_dim, Model::hidden);
    matrix(b + "attn_output.weight", Model::hidden, Model::q_dim);
    matrix(b + "ffn_gate.weight", Model::ffn, Model::hidden);
    matrix(b + "ffn_up.weight", Model::ffn, Model::hidden);
    matrix(b + "ffn_down.weight", Model::hidden, Model::ffn);
    norm(b + "attn_norm.weight", Model::hidden);
    norm(b + "ffn_norm.weight", Model::hidden);
    if (Model::post_norms) {
      norm(b + "post_attention_norm.weight", Model::hidden);
      norm(b + "post_ffw_norm.weight", Model::hidden);
    }
    if (Model::use_qk_norm) {
      norm(b + "attn_q_norm.weight", Model::head_dim);
      norm(b + "attn_k_norm.weight", Model::head_dim);
    }
  }
  return g;
}

// ------------------------------------------------------------------------------ safetensors
struct st_tensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", ...
  std::vector<std::uint64_t> shape;
  bytes data;
};

// header JSON built by hand (no nlohmann here, so the writer shares nothing with the reader).
inline bytes build_safetensors(const std::vector<st_tensor>& ts, const std::string& extra_header = {}) {
  std::string h = "{";
  std::uint64_t off = 0;
  bool first = true;
  for (const auto& t : ts) {
    if (!first) h += ",";
    first = false;
    h += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      if (i) h += ",";
      h += std::to_string(t.shape[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + t.data.size()) + "]}";
    off += t.data.size();
  }
  if (!extra_header.empty()) {
    if (!first) h += ",";
    h += extra_header;
  }
  h += "}";
  while ((8 + h.size()) % 8 != 0) h += ' ';  // the reference writer pads the header to 8 bytes
  bytes b;
  gguf_builder::put<std::uint64_t>(b, h.size());
  for (char c : h) b.push_back(std::byte(c));
  for (const auto& t : ts) b.insert(b.end(), t.data.begin(), t.data.end());
  return b;
}

inline std::string hf_model_type(gemmaforge::family f) {
  switch (f) {
    case gemmaforge::family::gemma1: return "gemma";
    case gemmaforge::family::gemma2: return "gemma2";
    default: return "gemma3_text";
  }
}

// config.json of Model in transformers 4.x style (flat rope keys); new_style: 5.x rope_parameters.
template <class Model>
std::string hf_config_json(bool new_style = false, int layers = -1) {
  using namespace gemmaforge;
  const int L = layers < 0 ? Model::n_layers : layers;
  std::string j = "{\"model_type\":\"" + hf_model_type(Model::arch) + "\",\"architectures\":[\"X\"]";
  auto f = [&](const char* k, const std::string& v) { j += ",\"" + std::string(k) + "\":" + v; };
  f("vocab_size", std::to_string(Model::vocab));
  f("hidden_size", std::to_string(Model::hidden));
  f("intermediate_size", std::to_string(Model::ffn));
  f("num_hidden_layers", std::to_string(L));
  f("num_attention_heads", std::to_string(Model::heads));
  f("num_key_value_heads", std::to_string(Model::kv_heads));
  f("head_dim", std::to_string(Model::head_dim));
  f("max_position_embeddings", std::to_string(Model::max_positions));
  f("rms_norm_eps", "1e-06");
  f("tie_word_embeddings", "true");
  if (Model::arch != family::gemma1) {
    f("sliding_window", std::to_string(Model::window));
    f("query_pre_attn_scalar", std::to_string(Model::query_pre_attn_scalar));
    f("attn_logit_softcapping", Model::attn_softcap ? std::to_string(Model::attn_softcap) + ".0" : "null");
    f("final_logit_softcapping", Model::final_softcap ? std::to_string(Model::final_softcap) + ".0" : "null");
  }
  if (Model::arch == family::gemma3) {
    std::string types = "[";
    for (int i = 0; i < L; ++i) types += std::string(i ? "," : "") + ((i + 1) % 6 == 0 ? "\"full_attention\"" : "\"sliding_attention\"");
    f("layer_types", types + "]");
  }
  char theta[64], local[64];
  std::snprintf(theta, sizeof theta, "%.1f", Model::rope::global_theta);
  std::snprintf(local, sizeof local, "%.1f", Model::rope::local_theta);
  if (!new_style) {
    f("rope_theta", theta);
    if (Model::arch == family::gemma3) f("rope_local_base_freq", local);
  } else if (Model::arch == family::gemma3) {
    f("rope_parameters", std::string("{\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":") + local +
                             "},\"full_attention\":{\"rope_type\":\"default\",\"rope_theta\":" + theta + "}}");
  } else {
    f("rope_parameters", std::string("{\"rope_type\":\"default\",\"rope_theta\":") + theta + "}");
  }
  return j + "}";
}

// An HF checkpoint of Model: config.json + model.safetensors, every tensor in `dtype`.
// Returns the tensors written (norm weights hold w, as HF stores them).
template <class Model>
std::vector<st_tensor> synthetic_hf_tensors(const std::string& dtype, std::uint32_t seed = 7, int layers = -1) {
  using namespace gemmaforge;
  const tensor_format fmt = dtype == "F32" ? tensor_format::f32 : dtype == "F16" ? tensor_format::f16 : tensor_format::bf16;
  std::mt19937 rng(seed);
  const int L = layers < 0 ? Model::n_layers : layers;
  std::vector<st_tensor> ts;
  auto add = [&](std::string name, const std::vector<std::uint64_t>& shape) {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    ts.push_back({std::move(name), dtype, shape, random_tensor_bytes(fmt, n, rng)});
  };
  const std::uint64_t H = Model::hidden;
  add("model.embed_tokens.weight", {std::uint64_t(Model::vocab), H});
  add("model.norm.weight", {H});
  for (int l = 0; l < L; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".";
    add(b + "self_attn.q_proj.weight", {std::uint64_t(Model::q_dim), H});
    add(b + "self_attn.k_proj.weight", {std::uint64_t(Model::kv_dim), H});
    add(b + "self_attn.v_proj.weight", {std::uint64_t(Model::kv_dim), H});
    add(b + "self_attn.o_proj.weight", {H, std::uint64_t(Model::q_dim)});
    add(b + "mlp.gate_proj.weight", {std::uint64_t(Model::ffn), H});
    add(b + "mlp.up_proj.weight", {std::uint64_t(Model::ffn), H});
    add(b + "mlp.down_proj.weight", {H, std::uint64_t(Model::ffn)});
    add(b + "input_layernorm.weight", {H});
    add(b + "post_attention_layernorm.weight", {H});
    if (Model::post_norms) {
      add(b + "pre_feedforward_layernorm.weight", {H});
      add(b + "post_feedforward_layernorm.weight", {H});
    }
    if (Model::use_qk_norm) {
      add(b + "self_attn.q_norm.weight", {std::uint64_t(Model::head_dim)});
      add(b + "self_attn.k_norm.weight", {std::uint64_t(Model::head_dim)});
    }
  }
  return ts;
}

// Value i of a tensor written above, as float.
inline float element_as_float(const st_tensor& t, std::size_t i) {
  using namespace gemmaforge;
  if (t.dtype == "F32") {
    float v;
    std::memcpy(&v, t.data.data() + 4 * i, 4);
    return v;
  }
  std::uint16_t b;
  std::memcpy(&b, t.data.data() + 2 * i, 2);
  return t.dtype == "F16" ? to_float(f16::from_bits(b)) : to_float(bf16::from_bits(b));
}

}  // namespace gf_test
