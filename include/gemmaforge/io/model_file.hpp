#pragma once
// model_file: one opened checkpoint, GGUF or Hugging Face safetensors, seen through one
// interface: the model's facts (architecture and shapes, for identification), its tensors under
// the file's own names with shapes normalised to outermost-first [rows, cols], and the naming
// scheme that turns a tensor of the model's list (model/tensor_list.hpp, which has both names of
// every tensor) into this file's name. The binder (weight_binding.hpp) works only with this
// interface, so GGUF and HF checkpoints share one validation path.
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/io/gguf.hpp>
#include <gemmaforge/model/descriptor.hpp>
#include <gemmaforge/model/layer_pattern.hpp>
#include <gemmaforge/model/tensor_list.hpp>

#if __has_include(<nlohmann/json.hpp>)
#define GF_IO_HAVE_SAFETENSORS 1
#include <gemmaforge/io/hf_config.hpp>
#include <gemmaforge/io/safetensors.hpp>
#else
#define GF_IO_HAVE_SAFETENSORS 0
#endif

namespace gemmaforge {

// What a file says about the model it holds. -1 / nullopt / empty: the file does not say.
struct model_facts {
  std::string arch;               // "gemma", "gemma2", "gemma3" (GGUF architecture / HF family)
  std::optional<family> fam;      // nullopt: not a family gemmaforge knows
  std::int64_t layers = -1, hidden = -1, ffn = -1, heads = -1, kv_heads = -1, head_dim = -1, vocab = -1;
  std::optional<std::int64_t> window;
  std::optional<double> attn_softcap, final_softcap;  // 0 = none
  std::optional<double> query_pre_attn_scalar;
  std::optional<double> rope_theta, rope_local_theta, rope_linear_factor;
  std::optional<double> rms_eps;
  std::vector<layer_kind> pattern;  // per layer, when the file spells it out
  std::string name_hint;            // general.name / _name_or_path / path: tells same-shaped fine-tunes apart

  std::string summary() const {
    auto n = [](std::int64_t v) { return v < 0 ? std::string("?") : std::to_string(v); };
    return arch + ": " + n(layers) + " layers, hidden " + n(hidden) + ", ffn " + n(ffn) + ", " + n(heads) + " heads / " +
           n(kv_heads) + " KV heads of " + n(head_dim) + ", vocab " + n(vocab);
  }
};

// A tensor of either file type, shape outermost first ([rows, cols] for a matrix).
struct source_tensor {
  std::string_view name;
  std::vector<std::uint64_t> shape;
  std::optional<tensor_format> format;  // nullopt: stored in a type gemmaforge cannot use
  std::string_view format_name;         // as the file calls it ("q4_k", "BF16")
  const std::byte* data = nullptr;
  std::uint64_t n_bytes = 0;
  std::uint64_t file_offset = 0;        // absolute, in its file
  std::string_view file;                // which file (shards of an HF checkpoint differ)

  std::string shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(shape[i]);
    }
    return s + "]";
  }
};

enum class model_file_kind : std::uint8_t { gguf, safetensors };

class model_file {
 public:
  // A .gguf file (recognised by its magic, whatever its name), an HF checkpoint directory, or a
  // .safetensors file inside one (config.json is read from its directory).
  static std::shared_ptr<const model_file> open(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool is_dir = fs::is_directory(path, ec);
    if (!is_dir && !fs::exists(path, ec)) throw error(errc::io, path.string() + ": no such file or directory");
    if (is_dir || path.extension() == ".safetensors") return open_hf(is_dir ? path : path.parent_path(), path.string());
    auto m = std::shared_ptr<model_file>(new model_file());
    m->kind_ = model_file_kind::gguf;
    m->path_ = path.string();
    m->gguf_ = std::make_unique<gguf_file>(gguf_file::open(path));
    m->init_gguf();
    return m;
  }

  // A GGUF image in memory that the caller keeps alive (tests, fuzzing).
  static std::shared_ptr<const model_file> from_gguf_bytes(std::span<const std::byte> bytes, std::string name) {
    auto m = std::shared_ptr<model_file>(new model_file());
    m->kind_ = model_file_kind::gguf;
    m->path_ = name;
    m->gguf_ = std::make_unique<gguf_file>(gguf_file::parse(bytes, std::move(name)));
    m->init_gguf();
    return m;
  }

  model_file_kind kind() const { return kind_; }
  const std::string& path() const { return path_; }
  const model_facts& facts() const { return facts_; }
  const std::vector<source_tensor>& tensors() const { return tensors_; }
  const source_tensor* find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }
  const gguf_file* gguf() const { return gguf_.get(); }
#if GF_IO_HAVE_SAFETENSORS
  const safetensors_checkpoint* safetensors() const { return st_.get(); }
  const hf_config* config() const { return config_ ? &*config_ : nullptr; }
#endif

  // GGUF files of the Gemma families store norm weights as w + 1 (the converter folds the 1 in);
  // HF checkpoints store w. See reference/gemma-models.md §2.
  bool stores_norm_plus_one() const {
    return kind_ == model_file_kind::gguf && facts_.fam && *facts_.fam != family::mistral;
  }

  // The file's name for a tensor of the model's list: GGUF "blk.N.attn_q.weight", HF
  // "model.layers.N.self_attn.q_proj.weight" (the prefix is the one this checkpoint uses).
  std::string tensor_name(const tensor_spec& t) const {
    const std::string layer = t.layer < 0 ? std::string() : std::to_string(t.layer) + ".";
    if (kind_ == model_file_kind::gguf) return (t.layer < 0 ? std::string() : "blk." + layer) + std::string(t.gguf_name);
    if (t.role == tensor_role::output) return std::string(t.hf_name);  // lm_head sits outside the text model
    return hf_prefix_ + (t.layer < 0 ? std::string() : "layers." + layer) + std::string(t.hf_name);
  }

  // Read every page of the mapped file(s) now (see mapped_file::prefault).
  void prefault(bool show_progress = true) const {
    if (gguf_ && gguf_->mapping().is_open()) gguf_->mapping().prefault(show_progress);
#if GF_IO_HAVE_SAFETENSORS
    if (st_)
      for (const auto& s : st_->shards()) s.mapping().prefault(show_progress);
#endif
  }

 private:
  model_file() = default;

  static std::optional<family> family_of(std::string_view arch) {
    if (arch == "gemma") return family::gemma1;
    if (arch == "gemma2") return family::gemma2;
    if (arch == "gemma3") return family::gemma3;
    if (arch == "llama") return family::mistral;  // llama.cpp files Mistral under "llama"
    return std::nullopt;
  }

  void add_tensor(source_tensor t) {
    index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  void init_gguf() {
    const gguf_file& g = *gguf_;
    for (const gguf_tensor& t : g.tensors()) {
      source_tensor s;
      s.name = t.name;
      for (std::uint32_t d = t.n_dims; d-- > 0;) s.shape.push_back(t.dims[d]);  // GGUF lists fastest first
      s.format = t.format;
      s.format_name = t.type_name;
      s.data = t.data;
      s.n_bytes = t.n_bytes;
      s.file_offset = g.data_offset() + t.offset;
      s.file = g.name();
      add_tensor(std::move(s));
    }
    model_facts& f = facts_;
    f.arch = std::string(g.get_string("general.architecture"));
    f.fam = family_of(f.arch);
    const std::string a = f.arch + ".";
    auto opt_int = [&](const std::string& key) -> std::int64_t {
      const gguf_value* v = g.find(key);
      if (!v) return -1;
      if (v->is_array()) {
        // Some architectures store per-layer values; Gemma's are uniform, so all must agree.
        const auto xs = g.get_array<std::int64_t>(key);
        if (xs.empty()) g.fail("metadata key '" + key + "' is an empty array");
        for (auto x : xs)
          if (x != xs.front()) g.fail("metadata key '" + key + "' varies per layer, which Gemma models do not");
        return xs.front();
      }
      return g.get_i64(key);
    };
    f.layers = opt_int(a + "block_count");
    f.hidden = opt_int(a + "embedding_length");
    f.ffn = opt_int(a + "feed_forward_length");
    f.heads = opt_int(a + "attention.head_count");
    f.kv_heads = opt_int(a + "attention.head_count_kv");
    if (f.kv_heads < 0) f.kv_heads = f.heads;
    f.head_dim = opt_int(a + "attention.key_length");
    if (f.head_dim < 0 && f.heads > 0 && f.hidden > 0) f.head_dim = f.hidden / f.heads;
    if (const gguf_tensor* e = g.find_tensor("token_embd.weight"); e && e->n_dims == 2) f.vocab = std::int64_t(e->dims[1]);
    else if (const gguf_value* toks = g.find("tokenizer.ggml.tokens"); toks && toks->is_array()) f.vocab = std::int64_t(toks->size());
    if (const gguf_value* w = g.find(a + "attention.sliding_window"); w && !w->is_array()) f.window = g.get_i64(a + "attention.sliding_window");
    if (f.fam == family::gemma2) {
      f.attn_softcap = g.find_f64(a + "attn_logit_softcapping");
      f.final_softcap = g.find_f64(a + "final_logit_softcapping");
    } else if (f.fam == family::gemma1 || f.fam == family::gemma3) {
      f.attn_softcap = g.find_f64(a + "attn_logit_softcapping").value_or(0.0);
      f.final_softcap = g.find_f64(a + "final_logit_softcapping").value_or(0.0);
    }
    f.rope_theta = g.find_f64(a + "rope.freq_base");
    if (auto st = g.find_string(a + "rope.scaling.type")) {
      if (*st == "linear") f.rope_linear_factor = g.find_f64(a + "rope.scaling.factor").value_or(1.0);
      else if (*st == "none") f.rope_linear_factor = 1.0;
    } else if (f.fam == family::gemma3) {
      f.rope_linear_factor = 1.0;
    }
    f.rms_eps = g.find_f64(a + "attention.layer_norm_rms_epsilon");
    if (auto n = g.find_string("general.name")) f.name_hint += std::string(*n) + " ";
    if (auto n = g.find_string("general.basename")) f.name_hint += std::string(*n) + " ";
    if (auto n = g.find_string("general.finetune")) f.name_hint += std::string(*n) + " ";
    f.name_hint += path_;
  }

  static std::shared_ptr<const model_file> open_hf([[maybe_unused]] const std::filesystem::path& dir,
                                                   [[maybe_unused]] const std::string& shown) {
#if GF_IO_HAVE_SAFETENSORS
    auto m = std::shared_ptr<model_file>(new model_file());
    m->kind_ = model_file_kind::safetensors;
    m->path_ = shown;
    const auto cfg_path = dir / "config.json";
    std::error_code ec;
    if (!std::filesystem::exists(cfg_path, ec))
      throw error(errc::io, dir.string() + ": no config.json (an HF checkpoint directory needs one)");
    m->config_ = hf_config::load(cfg_path);
    m->st_ = std::make_unique<safetensors_checkpoint>(safetensors_checkpoint::open(dir));
    for (const auto* t : m->st_->tensors()) {
      source_tensor s;
      s.name = t->name;
      s.shape = t->shape;
      s.format = t->format;
      s.format_name = t->dtype;
      s.data = t->data;
      s.n_bytes = t->end - t->begin;
      s.file_offset = t->file_offset;
      m->add_tensor(std::move(s));
    }
    for (const auto& shard : m->st_->shards())
      for (const auto& t : shard.tensors()) m->tensors_[m->index_.at(t.name)].file = shard.name();
    // Gemma3ForConditionalGeneration checkpoints nest the text model under another prefix.
    for (const char* p : {"model.", "model.language_model.", "language_model.model.", ""})
      if (m->find(std::string(p) + "embed_tokens.weight")) {
        m->hf_prefix_ = p;
        break;
      }
    const hf_config& c = *m->config_;
    model_facts& f = m->facts_;
    f.fam = c.arch;
    f.arch = std::string(to_string(c.arch));
    f.layers = c.num_hidden_layers;
    f.hidden = c.hidden_size;
    f.ffn = c.intermediate_size;
    f.heads = c.num_attention_heads;
    f.kv_heads = c.num_key_value_heads;
    f.head_dim = c.head_dim;
    f.vocab = c.vocab_size;
    f.window = c.sliding_window;
    f.attn_softcap = c.attn_logit_softcapping.value_or(0.0);
    f.final_softcap = c.final_logit_softcapping.value_or(0.0);
    f.query_pre_attn_scalar = c.query_pre_attn_scalar;
    f.rope_theta = c.rope_theta;
    f.rope_local_theta = c.rope_local_theta;
    f.rope_linear_factor = c.rope_linear_factor;
    f.rms_eps = c.rms_norm_eps;
    if (!c.layer_types.empty()) {
      for (const auto& t : c.layer_types) {
        if (t == "sliding_attention") f.pattern.push_back(layer_kind::local);
        else if (t == "full_attention") f.pattern.push_back(layer_kind::global);
        else throw error(errc::format, c.file + ": unknown layer type " + quote_for_message(t));
      }
    } else if (c.arch == family::gemma2) {
      for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
        f.pattern.push_back(i % 2 == 0 ? layer_kind::local : layer_kind::global);
    } else if (c.arch == family::gemma3 && c.sliding_window_pattern && *c.sliding_window_pattern > 0) {
      for (std::int64_t i = 0; i < c.num_hidden_layers; ++i)
        f.pattern.push_back((i + 1) % *c.sliding_window_pattern == 0 ? layer_kind::global : layer_kind::local);
    } else if (c.arch == family::gemma1) {
      f.pattern.assign(std::size_t(c.num_hidden_layers), layer_kind::global);
    }
    f.name_hint = c.name_or_path + " " + shown;
    return m;
#else
    throw error(errc::invalid_argument, shown + ": this build has no safetensors support (nlohmann-json was not found)");
#endif
  }

  model_file_kind kind_ = model_file_kind::gguf;
  std::string path_;
  model_facts facts_;
  std::vector<source_tensor> tensors_;
  std::unordered_map<std::string_view, std::size_t> index_;
  std::unique_ptr<gguf_file> gguf_;
  std::string hf_prefix_ = "model.";
#if GF_IO_HAVE_SAFETENSORS
  std::unique_ptr<safetensors_checkpoint> st_;
  std::optional<hf_config> config_;
#endif
};

}  // namespace gemmaforge
