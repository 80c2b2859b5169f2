#pragma once
// Loader for the golden fixtures in tests/golden/ (made by tools/make_golden.py and
// tools/make_reference_270m.py from HF transformers; tests/golden/README.md describes them).
//
//   auto fx = gemmaforge::golden::load_tiny("tiny_gemma2");       // or "tiny_gemma2_bf16"
//   fx.weights                  HF safetensors file (f32, or bf16 for the _bf16 fixtures)
//   fx.logits_row(p)            HF's logits at position p of fx.ids, [vocab]
//   fx.logits_tolerance         max |ours - HF| a correct f32 forward pass must meet
//   auto ref = gemmaforge::golden::load_reference_270m();
//   ref.prompt("long").topk_ids_at(p)   HF's top-16 at position p of the real Gemma 3 270M
//
// Needs nlohmann-json (GF_HAVE_JSON) and GF_TEST_DATA_DIR (the absolute path of tests/). Errors
// (missing or inconsistent files) throw std::runtime_error with the path in the message.
#if !defined(GF_HAVE_JSON) || !GF_HAVE_JSON
#define GF_GOLDEN_AVAILABLE 0
#else
#define GF_GOLDEN_AVAILABLE 1

#include <nlohmann/json.hpp>

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/model/layer_pattern.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef GF_TEST_DATA_DIR
#error "golden.hpp needs GF_TEST_DATA_DIR (the absolute path of tests/)"
#endif

namespace gemmaforge::golden {

// The fixture files store little-endian floats; reading them as host floats assumes the same.
static_assert(std::endian::native == std::endian::little, "golden fixtures are little-endian");

inline std::filesystem::path golden_dir() { return std::filesystem::path(GF_TEST_DATA_DIR) / "golden"; }

// Names of the tiny fixtures: three models, each with f32 and bf16 weights.
inline constexpr std::string_view tiny_fixture_names[] = {"tiny_gemma1", "tiny_gemma1_bf16", "tiny_gemma2",
                                                         "tiny_gemma2_bf16", "tiny_gemma3", "tiny_gemma3_bf16"};

// ---- tiny models ---------------------------------------------------------------------------
struct tiny_fixture {
  std::string key;                    // "tiny_gemma2_bf16": the folder under tests/golden/
  std::string model;                  // "tiny-gemma2": the descriptor's name
  std::filesystem::path dir;          // HF model folder: config.json + model.safetensors
  std::filesystem::path weights;      // dir / "model.safetensors"
  std::string weights_dtype;          // "float32" or "bfloat16" (HF then ran f32 on the rounded values)

  // config.json (HF's view of the shapes)
  int vocab = 0, hidden = 0, ffn = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, max_positions = 0;

  // Reference semantics HF used (expected.json "semantics"), to check descriptors against.
  std::vector<layer_kind> layer_kinds;  // [layers]
  int sliding_window = 0;               // 0: no local layers
  float attn_scale = 0;                 // multiplies q.k (query_pre_attn_scalar^-1/2; Gemma 1 head_dim^-1/2)
  float embed_scale = 0;                // multiplies the embedding row (sqrt(hidden) in f32: 8 exactly)
  double rope_theta_global = 0, rope_theta_local = 0;
  float attn_softcap = 0, final_softcap = 0;  // 0 = none
  float rms_eps = 0;
  bool qk_norm = false, post_norms = false;

  // The 32-token sequence and HF's logits at every position.
  int positions = 0;
  std::vector<std::int32_t> ids;     // [positions], ids[0] = BOS (2)
  std::vector<float> logits;         // [positions][vocab]
  std::vector<std::int32_t> argmax;  // [positions]
  float logit_min = 0, logit_max = 0;
  float top2_gap_min = 0;            // smallest top-1 minus top-2 logit over the positions
  float logits_tolerance = 0;        // 1e-4 * (logit_max - logit_min); README says why
  float hf_f32_vs_f64 = 0;           // how far f32 rounding alone moved HF's logits

  // Residual stream: row 0 = scaled embedding, row i + 1 = after layer i (before the final norm).
  std::vector<float> hidden_states;  // [layers + 1][positions][hidden]

  // Greedy decoding (argmax, no EOS stop) from the first 8 ids.
  std::vector<std::int32_t> greedy_prompt;        // = ids[0..8)
  std::vector<std::int32_t> greedy_continuation;  // 16 ids
  std::vector<float> greedy_top2_gaps;            // per step: HF's top-1 minus top-2 logit
  float greedy_top2_gap_min = 0;

  std::span<const float> logits_row(int p) const {
    return {logits.data() + std::size_t(p) * std::size_t(vocab), std::size_t(vocab)};
  }
  std::span<const float> hidden_row(int row, int p) const {
    return {hidden_states.data() + (std::size_t(row) * std::size_t(positions) + std::size_t(p)) * std::size_t(hidden),
            std::size_t(hidden)};
  }
  float logit_range() const { return logit_max - logit_min; }
};

// ---- the real Gemma 3 270M ------------------------------------------------------------------
struct reference_prompt {
  std::string name;                  // "english", "chat", "code", "long"
  std::string text;                  // what was tokenized (BOS added by the tokenizer)
  std::vector<std::int32_t> ids;     // [n], BOS first
  int top_k = 0;
  std::vector<std::int32_t> argmax;       // [n]
  std::vector<std::int32_t> topk_ids;     // [n][top_k], by decreasing logit
  std::vector<float> topk_logits;         // [n][top_k]
  std::vector<float> logsumexp;           // [n], over the full vocabulary (computed in f64)
  std::vector<float> min, max;            // [n], of the full logit row
  float top2_gap_min = 0;
  std::vector<std::int32_t> greedy;       // 24 ids, empty if none recorded for this prompt
  std::string greedy_text;
  std::vector<float> greedy_top2_gaps;    // per step: HF's top-1 minus top-2 logit
  float greedy_top2_gap_min = 0;

  int n() const { return int(ids.size()); }
  std::span<const std::int32_t> topk_ids_at(int p) const {
    return {topk_ids.data() + std::size_t(p) * std::size_t(top_k), std::size_t(top_k)};
  }
  std::span<const float> topk_logits_at(int p) const {
    return {topk_logits.data() + std::size_t(p) * std::size_t(top_k), std::size_t(top_k)};
  }
};

struct reference_270m {
  std::string gguf_file;               // the Q4_K_M file HF dequantized (scripts/setup installs it)
  std::vector<layer_kind> layer_kinds; // [18]
  int sliding_window = 0;              // 512
  double rope_theta_global = 0, rope_theta_local = 0;
  float attn_scale = 0;                // 256^-1/2
  float embed_scale = 0;               // sqrt(640) in f32 = 25.298222 (not bf16's 25.25)
  float rms_eps = 0;
  int vocab = 0, hidden = 0;
  std::int32_t bos = 2, eos = 1, start_of_turn = 105, end_of_turn = 106;
  std::vector<reference_prompt> prompts;
  nlohmann::json precision_study;      // f64 / bf16 reruns: how far the logits move (README)

  const reference_prompt& prompt(std::string_view name) const {
    for (const auto& p : prompts)
      if (p.name == name) return p;
    throw std::runtime_error("golden: no 270M reference prompt named " + std::string(name));
  }
};

// ---- minimal safetensors header reader (fixture sanity checks; io/ has the real reader) ----------
struct safetensors_entry {
  std::string dtype;                 // "F32", "BF16"
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte offsets within the data section
};
struct safetensors_header {
  std::uint64_t header_bytes = 0;    // the JSON length; data starts at 8 + header_bytes
  std::map<std::string, safetensors_entry> tensors;
};

namespace detail {

[[noreturn]] inline void fail(const std::filesystem::path& file, const std::string& what) {
  throw std::runtime_error("golden fixture " + file.string() + ": " + what);
}

inline nlohmann::json read_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail(file, "cannot open (run tools/make_golden.py?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail(file, std::string("bad JSON: ") + e.what());
  }
}

inline std::vector<float> read_f32(const std::filesystem::path& file, std::size_t count) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(file, ec);
  if (ec) fail(file, "cannot stat");
  if (bytes != count * sizeof(float))
    fail(file, "has " + std::to_string(bytes) + " bytes, expected " + std::to_string(count * sizeof(float)));
  std::vector<float> v(count);
  std::ifstream in(file, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(v.data()), std::streamsize(bytes))) fail(file, "short read");
  return v;
}

template <class T>
std::vector<T> flatten(const nlohmann::json& rows, std::size_t width, const std::filesystem::path& file) {
  std::vector<T> out;
  out.reserve(rows.size() * width);
  for (const auto& r : rows) {
    if (r.size() != width) fail(file, "ragged row");
    for (const auto& x : r) out.push_back(x.get<T>());
  }
  return out;
}

inline std::vector<layer_kind> kinds(const nlohmann::json& names, const std::filesystem::path& file) {
  std::vector<layer_kind> out;
  for (const auto& n : names) {
    const auto s = n.get<std::string>();
    if (s != "local" && s != "global") fail(file, "unknown layer type " + s);
    out.push_back(s == "local" ? layer_kind::local : layer_kind::global);
  }
  return out;
}

}  // namespace detail

inline safetensors_header read_safetensors_header(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) detail::fail(file, "cannot open");
  unsigned char len[8];
  if (!in.read(reinterpret_cast<char*>(len), 8)) detail::fail(file, "too short for a safetensors header");
  safetensors_header h;
  for (int i = 7; i >= 0; --i) h.header_bytes = (h.header_bytes << 8) | len[i];
  if (h.header_bytes > (std::uint64_t(1) << 24)) detail::fail(file, "implausible header length");
  std::string text(h.header_bytes, '\0');
  if (!in.read(text.data(), std::streamsize(h.header_bytes))) detail::fail(file, "short header");
  const auto j = nlohmann::json::parse(text);
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") continue;
    safetensors_entry e;
    e.dtype = v.at("dtype").get<std::string>();
    e.shape = v.at("shape").get<std::vector<std::int64_t>>();
    const auto off = v.at("data_offsets").get<std::vector<std::uint64_t>>();
    if (off.size() != 2 || off[1] < off[0]) detail::fail(file, "bad data_offsets for " + name);
    e.begin = off[0];
    e.end = off[1];
    h.tensors.emplace(name, std::move(e));
  }
  return h;
}

inline tiny_fixture load_tiny(std::string_view key) {
  tiny_fixture f;
  f.key = std::string(key);
  f.dir = golden_dir() / f.key;
  f.weights = f.dir / "model.safetensors";
  const auto exp_path = f.dir / "expected.json";
  const auto e = detail::read_json(exp_path);
  const auto cfg_path = f.dir / "config.json";
  const auto c = detail::read_json(cfg_path);
  try {
    if (e.at("format").get<int>() != 1) detail::fail(exp_path, "unknown format version");
    f.model = e.at("model").get<std::string>();
    f.weights_dtype = e.at("weights_dtype").get<std::string>();

    f.vocab = c.at("vocab_size").get<int>();
    f.hidden = c.at("hidden_size").get<int>();
    f.ffn = c.at("intermediate_size").get<int>();
    f.layers = c.at("num_hidden_layers").get<int>();
    f.heads = c.at("num_attention_heads").get<int>();
    f.kv_heads = c.at("num_key_value_heads").get<int>();
    f.head_dim = c.at("head_dim").get<int>();
    f.max_positions = c.at("max_position_embeddings").get<int>();

    const auto& s = e.at("semantics");
    f.layer_kinds = detail::kinds(s.at("layer_types"), exp_path);
    f.sliding_window = s.at("sliding_window").get<int>();
    f.attn_scale = s.at("attn_scale").get<float>();
    f.embed_scale = s.at("embed_scale").get<float>();
    f.rope_theta_global = s.at("rope_theta").at("global").get<double>();
    f.rope_theta_local = s.at("rope_theta").at("local").get<double>();
    f.attn_softcap = s.at("attn_softcap").get<float>();
    f.final_softcap = s.at("final_softcap").get<float>();
    f.rms_eps = s.at("rms_eps").get<float>();
    f.qk_norm = s.at("qk_norm").get<bool>();
    f.post_norms = s.at("post_norms").get<bool>();

    const auto& q = e.at("sequence");
    f.ids = q.at("ids").get<std::vector<std::int32_t>>();
    f.positions = int(f.ids.size());
    const auto shape = q.at("logits_shape").get<std::vector<int>>();
    if (shape.size() != 2 || shape[0] != f.positions || shape[1] != f.vocab)
      detail::fail(exp_path, "logits_shape does not match ids and vocab_size");
    f.logits = detail::read_f32(f.dir / q.at("logits_file").get<std::string>(),
                                std::size_t(f.positions) * std::size_t(f.vocab));
    f.argmax = q.at("argmax").get<std::vector<std::int32_t>>();
    f.logit_min = q.at("logit_min").get<float>();
    f.logit_max = q.at("logit_max").get<float>();
    f.top2_gap_min = q.at("top2_gap_min").get<float>();

    const auto& h = e.at("hidden");
    const auto hs = h.at("shape").get<std::vector<int>>();
    if (hs.size() != 3 || hs[0] != f.layers + 1 || hs[1] != f.positions || hs[2] != f.hidden)
      detail::fail(exp_path, "hidden shape does not match the config");
    f.hidden_states = detail::read_f32(f.dir / h.at("file").get<std::string>(),
                                       std::size_t(hs[0]) * std::size_t(hs[1]) * std::size_t(hs[2]));

    const auto& g = e.at("greedy");
    f.greedy_prompt = g.at("prompt").get<std::vector<std::int32_t>>();
    f.greedy_continuation = g.at("continuation").get<std::vector<std::int32_t>>();
    f.greedy_top2_gaps = g.at("top2_gaps").get<std::vector<float>>();
    f.greedy_top2_gap_min = g.at("top2_gap_min").get<float>();

    f.logits_tolerance = e.at("tolerance").at("logits_abs").get<float>();
    f.hf_f32_vs_f64 = e.at("tolerance").at("hf_f32_vs_f64_max_abs").get<float>();
  } catch (const nlohmann::json::exception& ex) {
    detail::fail(exp_path, std::string("missing or mistyped field: ") + ex.what());
  }
  return f;
}

inline reference_270m load_reference_270m() {
  const auto path = golden_dir() / "gemma3_270m" / "reference.json";
  const auto j = detail::read_json(path);
  reference_270m r;
  try {
    if (j.at("format").get<int>() != 1) detail::fail(path, "unknown format version");
    r.gguf_file = j.at("gguf_file").get<std::string>();
    const auto& s = j.at("semantics");
    r.layer_kinds = detail::kinds(s.at("layer_types"), path);
    r.sliding_window = s.at("sliding_window").get<int>();
    r.rope_theta_global = s.at("rope_theta").at("global").get<double>();
    r.rope_theta_local = s.at("rope_theta").at("local").get<double>();
    r.attn_scale = s.at("attn_scale").get<float>();
    r.embed_scale = s.at("embed_scale").get<float>();
    r.rms_eps = s.at("rms_eps").get<float>();
    r.vocab = s.at("vocab").get<int>();
    r.hidden = s.at("hidden").get<int>();
    const auto& sp = j.at("special_ids");
    r.bos = sp.at("<bos>").get<std::int32_t>();
    r.eos = sp.at("<eos>").get<std::int32_t>();
    r.start_of_turn = sp.at("<start_of_turn>").get<std::int32_t>();
    r.end_of_turn = sp.at("<end_of_turn>").get<std::int32_t>();
    r.precision_study = j.value("precision_study", nlohmann::json::object());
    const int k = j.at("top_k").get<int>();
    for (const auto& p : j.at("prompts")) {
      reference_prompt q;
      q.name = p.at("name").get<std::string>();
      q.text = p.at("text").get<std::string>();
      q.ids = p.at("ids").get<std::vector<std::int32_t>>();
      q.top_k = k;
      q.argmax = p.at("argmax").get<std::vector<std::int32_t>>();
      q.topk_ids = detail::flatten<std::int32_t>(p.at("topk_ids"), std::size_t(k), path);
      q.topk_logits = detail::flatten<float>(p.at("topk_logits"), std::size_t(k), path);
      q.logsumexp = p.at("logsumexp").get<std::vector<float>>();
      q.min = p.at("min").get<std::vector<float>>();
      q.max = p.at("max").get<std::vector<float>>();
      q.top2_gap_min = p.at("top2_gap_min").get<float>();
      if (p.contains("greedy")) {
        q.greedy = p.at("greedy").at("continuation").get<std::vector<std::int32_t>>();
        q.greedy_text = p.at("greedy").at("text").get<std::string>();
        q.greedy_top2_gaps = p.at("greedy").at("top2_gaps").get<std::vector<float>>();
        q.greedy_top2_gap_min = p.at("greedy").at("top2_gap_min").get<float>();
      }
      const std::size_t n = q.ids.size();
      if (q.argmax.size() != n || q.topk_ids.size() != n * std::size_t(k) || q.logsumexp.size() != n ||
          q.min.size() != n || q.max.size() != n)
        detail::fail(path, "prompt " + q.name + ": per-position arrays differ in length from ids");
      r.prompts.push_back(std::move(q));
    }
  } catch (const nlohmann::json::exception& ex) {
    detail::fail(path, std::string("missing or mistyped field: ") + ex.what());
  }
  return r;
}

}  // namespace gemmaforge::golden

#endif  // GF_HAVE_JSON
