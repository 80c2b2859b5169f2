#pragma once
// Weight binding: from an opened checkpoint to model_weights<Model>, checked against the
// compile-time descriptor.
//
//   identify_model<List>(file)   the name of the descriptor in List whose shape facts (family,
//                                layers, hidden, ffn, heads, KV heads, head_dim, vocab) the file
//                                has; errc::model_mismatch naming the closest one's differences.
//   load_model<Model>(path)      open (GGUF file or HF directory) + bind; bound_model<Model> owns
//                                the mapping(s) and the f32 norm gains, weights() are views.
//   with_model<List>(path, f)    identify, bind, then f(type_tag<Model>{}, bound_model<Model>&&).
//
// Binding checks every tensor the descriptor needs by name, shape and storage format and the
// descriptor-level facts (window, softcaps, RoPE, layer pattern), and reports *all* problems in
// one error, e.g. "file has 18 layers, gemma-3-1b expects 26" plus each missing tensor.
// Norm weights become f32 gains g = 1 + w: GGUF files store w + 1 already (used as is), HF files
// store w (1 is added in f32 after converting from the file's dtype).
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/tensor.hpp>
#include <gemmaforge/core/type_list.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/io/model_file.hpp>
#include <gemmaforge/math/norm.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/model/weights.hpp>

namespace gemmaforge {

struct load_options {
  bool prefault = true;  // read the whole mapping at load time (progress bar on a terminal)
  bool progress = true;  // allow the progress bar (it still needs stderr to be a terminal)
};

// ------------------------------------------------------------------------------ identification
namespace detail {

// Lower-case letters and digits only: "Gemma 3 270m" -> "gemma3270m".
inline std::string squash_name(std::string_view s) {
  std::string out;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c))) out += char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The differences between a file's shape facts and descriptor M, in words.
template <class M>
std::vector<std::string> shape_differences(const model_facts& f) {
  std::vector<std::string> d;
  const std::string n(M::name);
  if (f.fam != M::arch)
    d.push_back("file is a " + (f.arch.empty() ? std::string("?") : f.arch) + " model, " + n + " is " +
                std::string(to_string(M::arch)));
  // `what` spells a fact with {} where the number goes: "{} layers", "hidden size {}".
  auto cmp = [&](std::int64_t have, std::int64_t want, std::string_view what, std::string_view label) {
    auto fill = [&](std::int64_t v) {
      std::string s(what);
      return s.replace(s.find("{}"), 2, std::to_string(v));
    };
    if (have >= 0 && have != want) d.push_back("file has " + fill(have) + ", " + n + " expects " + std::to_string(want));
    else if (have < 0)
      d.push_back("file does not state its " + std::string(label) + " (" + n + " expects " + std::to_string(want) + ")");
  };
  cmp(f.layers, M::n_layers, "{} layers", "layer count");
  cmp(f.hidden, M::hidden, "hidden size {}", "hidden size");
  cmp(f.ffn, M::ffn, "feed-forward size {}", "feed-forward size");
  cmp(f.heads, M::heads, "{} attention heads", "attention head count");
  cmp(f.kv_heads, M::kv_heads, "{} KV heads", "KV head count");
  cmp(f.head_dim, M::head_dim, "head_dim {}", "head_dim");
  if (f.vocab == M::vocab + extra_embedding_rows<M>())  // HF 4B+: text vocabulary + image tokens
    cmp(f.vocab, M::vocab + extra_embedding_rows<M>(), "a vocabulary of {}", "vocabulary size");
  else
    cmp(f.vocab, M::vocab, "a vocabulary of {}", "vocabulary size");
  return d;
}

// Facts beyond the shapes that must agree for the forward pass to compute what the checkpoint was
// trained for. Only facts the file states are compared.
template <class M>
std::vector<std::string> numeric_differences(const model_facts& f) {
  std::vector<std::string> d;
  const std::string n(M::name);
  auto near = [](double a, double b) { return std::fabs(a - b) <= 1e-4 * std::max(std::fabs(a), std::fabs(b)); };
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  if (f.window && M::window > 0 && *f.window != M::window)
    d.push_back("file has a sliding window of " + std::to_string(*f.window) + ", " + n + " expects " + std::to_string(M::window));
  if (f.attn_softcap && !near(*f.attn_softcap, M::attn_softcap))
    d.push_back("file has attention softcap " + num(*f.attn_softcap) + ", " + n + " expects " + std::to_string(M::attn_softcap));
  if (f.final_softcap && !near(*f.final_softcap, M::final_softcap))
    d.push_back("file has final-logit softcap " + num(*f.final_softcap) + ", " + n + " expects " + std::to_string(M::final_softcap));
  if (f.query_pre_attn_scalar && !near(*f.query_pre_attn_scalar, M::query_pre_attn_scalar))
    d.push_back("file has query_pre_attn_scalar " + num(*f.query_pre_attn_scalar) + ", " + n + " expects " +
                std::to_string(M::query_pre_attn_scalar));
  if (f.rope_theta && !near(*f.rope_theta, M::rope::global_theta))
    d.push_back("file has RoPE base " + num(*f.rope_theta) + ", " + n + " expects " + num(M::rope::global_theta));
  if (f.rope_local_theta && M::window > 0 && !near(*f.rope_local_theta, M::rope::local_theta))
    d.push_back("file has local RoPE base " + num(*f.rope_local_theta) + ", " + n + " expects " + num(M::rope::local_theta));
  if (f.rope_linear_factor && !near(*f.rope_linear_factor, M::rope::global_linear_scale))
    d.push_back("file has RoPE linear scaling " + num(*f.rope_linear_factor) + ", " + n + " expects " +
                std::to_string(M::rope::global_linear_scale));
  if (f.rms_eps && std::fabs(*f.rms_eps - double(M::rms_eps)) > 1e-3 * double(M::rms_eps))
    d.push_back("file has RMSNorm epsilon " + num(*f.rms_eps) + ", " + n + " expects " + num(double(M::rms_eps)));
  if (!f.pattern.empty() && std::int64_t(f.pattern.size()) == M::n_layers) {
    for (int i = 0; i < M::n_layers; ++i)
      if (f.pattern[std::size_t(i)] != M::layers::kind(i)) {
        d.push_back("file's layer " + std::to_string(i) + " is " +
                    (f.pattern[std::size_t(i)] == layer_kind::global ? "global" : "sliding-window") + ", " + n +
                    " makes it " + (M::layers::kind(i) == layer_kind::global ? "global" : "sliding-window"));
        break;
      }
  }
  return d;
}

inline std::string join_lines(const std::vector<std::string>& items, std::size_t max_items = 24) {
  std::string s;
  for (std::size_t i = 0; i < items.size() && i < max_items; ++i) s += "\n  - " + items[i];
  if (items.size() > max_items) s += "\n  - ... and " + std::to_string(items.size() - max_items) + " more";
  return s;
}

}  // namespace detail

// The name of the descriptor in List that matches the file's shape facts. Several descriptors can
// share every shape (gemma-7b and its fine-tune openchat-3.5-0106-gemma): the one whose name
// appears in the file's name hints (general.name, _name_or_path, the path) wins, else the first.
template <class List = all_models>
std::string_view identify_model(const model_file& file) {
  const model_facts& f = file.facts();
  std::vector<std::string_view> matches;
  std::string_view closest;
  std::vector<std::string> closest_diffs;
  std::size_t best = std::size_t(-1);
  for_each_type(List{}, [&](auto tag) {
    using M = typename decltype(tag)::type;
    auto diffs = detail::shape_differences<M>(f);
    if (diffs.empty()) matches.push_back(M::name);
    // Closest: fewest differences, and among equals prefer the same family.
    const std::size_t score = diffs.size() * 2 + (f.fam == M::arch ? 0 : 1);
    if (score < best) {
      best = score;
      closest = M::name;
      closest_diffs = std::move(diffs);
    }
  });
  if (matches.empty()) {
    std::string msg = file.path() + ": no registered model matches this file (" + f.summary() + ")";
    if (!closest.empty()) msg += "; the closest is " + std::string(closest) + ":" + detail::join_lines(closest_diffs);
    throw error(errc::model_mismatch, msg);
  }
  const std::string hint = detail::squash_name(f.name_hint);
  for (std::string_view m : matches)
    if (hint.find(detail::squash_name(m)) != std::string::npos) return m;
  return matches.front();
}

// Same, opening the file (a GGUF file or an HF checkpoint directory) first.
template <class List = all_models>
std::string_view identify_model(const std::filesystem::path& path) {
  return identify_model<List>(*model_file::open(path));  // names are static: the view outlives the file
}

// ---------------------------------------------------------------------------------- binding
struct bound_tensor {
  std::string name;   // as the file spells it
  tensor_role role;
  int layer = -1;     // -1 for whole-model tensors
  tensor_format format;
  std::vector<std::uint64_t> shape;  // outermost first
  std::uint64_t bytes = 0;           // in the file
};

// What the bound weights cost, per storage format (what the memory planner and the engine's load
// log need). Norm gains are counted in the file's format and again as the f32 copy.
struct weight_summary {
  std::array<std::uint64_t, std::size(all_tensor_formats)> bytes_by_format{};
  std::array<std::uint32_t, std::size(all_tensor_formats)> tensors_by_format{};
  std::uint64_t total_bytes = 0;      // every bound tensor, as stored in the file
  std::uint64_t matrix_bytes = 0;     // embedding + projections (what matmuls stream)
  std::uint64_t gain_bytes = 0;       // the f32 gain copies owned by bound_model
  std::uint64_t parameters = 0;

  std::uint64_t bytes(tensor_format f) const { return bytes_by_format[std::size_t(f)]; }
  std::uint32_t count(tensor_format f) const { return tensors_by_format[std::size_t(f)]; }
  std::string to_string() const {
    std::string s = format_bytes(total_bytes) + " in " + std::to_string(parameters) + " parameters:";
    // Appends, not "literal" + std::string&&: GCC 12 reports a false -Wrestrict on that form when
    // it is inlined into some translation units (engines_cuda.cu under -Werror).
    for (tensor_format f : all_tensor_formats)
      if (count(f)) {
        s += ' ';
        s += gemmaforge::to_string(f);
        s += ' ';
        s += std::to_string(count(f));
        s += " tensors ";
        s += format_bytes(bytes(f));
        s += ';';
      }
    return s;
  }
};

template <class Model>
class bound_model {
  static_assert(Model::runnable, "bound_model: this descriptor is for memory planning only and cannot be loaded");

 public:
  using model = Model;

  const model_weights<Model>& weights() const { return weights_; }
  const model_file& file() const { return *file_; }
  const weight_summary& summary() const { return summary_; }
  const std::vector<bound_tensor>& tensors() const { return tensors_; }

  bound_model(bound_model&&) noexcept = default;
  bound_model& operator=(bound_model&&) noexcept = default;
  bound_model(const bound_model&) = delete;  // weights_ points into gains_
  bound_model& operator=(const bound_model&) = delete;

 private:
  template <class M>
  friend bound_model<M> bind_model(const std::shared_ptr<const model_file>& file);
  bound_model() = default;

  std::shared_ptr<const model_file> file_;
  std::vector<float> gains_;  // every norm's gains, one allocation; weights_ points into it
  model_weights<Model> weights_;
  std::vector<bound_tensor> tensors_;
  weight_summary summary_;
};

namespace detail {

inline float load_element(const std::byte* p, tensor_format f) {
  switch (f) {
    case tensor_format::f32: { float v; std::memcpy(&v, p, 4); return v; }
    case tensor_format::f16: { std::uint16_t b; std::memcpy(&b, p, 2); return to_float(f16::from_bits(b)); }
    case tensor_format::bf16: { std::uint16_t b; std::memcpy(&b, p, 2); return to_float(bf16::from_bits(b)); }
    default: return 0.0f;
  }
}

}  // namespace detail

// Bind an opened file as Model; all problems are collected and thrown together.
template <class Model>
bound_model<Model> bind_model(const std::shared_ptr<const model_file>& file) {
  const model_file& mf = *file;
  const std::string mname(Model::name);
  std::vector<std::string> problems;
  bool mismatch = false;  // any problem other than unsupported storage formats

  for (auto& d : detail::shape_differences<Model>(mf.facts())) problems.push_back(std::move(d)), mismatch = true;
  for (auto& d : detail::numeric_differences<Model>(mf.facts())) problems.push_back(std::move(d)), mismatch = true;

  bound_model<Model> out;
  out.file_ = file;
  const bool plus_one_stored = mf.stores_norm_plus_one();
  const bool add_one = !plus_one_stored && Model::norm_gain == norm_gain_type::one_plus_w;

  // Pass 1: find and check every tensor, sizing the gain buffer; pass 2 fills the views (the gain
  // buffer must not reallocate after pointers into it are handed out).
  struct pending {
    tensor_spec spec;
    const source_tensor* t;
  };
  std::vector<pending> found;
  std::size_t gain_floats = 0;

  // An HF checkpoint may carry extra embedding rows (model/descriptor.hpp): bind the first vocab.
  const std::uint64_t V = Model::vocab;
  const std::uint64_t hf_embedding_rows = V + std::uint64_t(extra_embedding_rows<Model>());

  for_each_tensor<Model>([&](const tensor_spec& spec) {
    if (!is_bound(spec)) return;
    const tensor_role role = spec.role;
    const int layer = spec.layer;
    const std::string name = mf.tensor_name(spec);
    const source_tensor* t = mf.find(name);
    if (!t) {
      if (!spec.required) return;
      problems.push_back("missing tensor " + name + " (" + std::string(to_string(role)) +
                         (layer >= 0 ? " of layer " + std::to_string(layer) : std::string()) + ")");
      mismatch = true;
      return;
    }
    std::vector<std::uint64_t> shape{spec.shape[0]};
    if (!spec.is_vector()) shape.push_back(spec.shape[1]);
    if (role == tensor_role::embedding && t->shape.size() == 2 && t->shape[0] == hf_embedding_rows)
      shape[0] = hf_embedding_rows;
    bool ok = true;
    if (t->shape != shape) {
      std::string want = "[";
      for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) want += ", ";
        want += std::to_string(shape[i]);
      }
      problems.push_back("tensor " + name + " has shape " + t->shape_string() + ", " + mname + " expects " + want + "]");
      mismatch = true;
      ok = false;
    }
    if (!t->format) {
      problems.push_back("tensor " + name + ": unsupported format " + std::string(t->format_name));
      ok = false;
    } else if (is_norm(role) && is_block_quantized(*t->format)) {
      problems.push_back("tensor " + name + ": norm stored as " + std::string(to_string(*t->format)) +
                         "; norms must be f32, f16 or bf16");
      ok = false;
    } else if (!is_block_quantized(*t->format) && reinterpret_cast<std::uintptr_t>(t->data) % block_bytes(*t->format) != 0) {
      problems.push_back("tensor " + name + ": data at file offset " + std::to_string(t->file_offset) +
                         " is not aligned to its " + std::to_string(block_bytes(*t->format)) + "-byte elements");
      ok = false;
    } else if (t->shape.size() == 2 && t->shape[1] % block_elems(*t->format) != 0) {
      problems.push_back("tensor " + name + ": rows of " + std::to_string(t->shape[1]) + " are not whole " +
                         std::string(to_string(*t->format)) + " blocks");
      ok = false;
    }
    if (!ok) return;
    if (is_norm(role)) gain_floats += t->shape[0];
    found.push_back({spec, t});
  });

  // Norm gains: convert now so that NaN/Inf in a norm is reported with the other problems.
  out.gains_.resize(gain_floats);
  std::size_t at = 0;
  std::vector<std::size_t> gain_at(found.size(), 0);
  for (std::size_t i = 0; i < found.size(); ++i) {
    const source_tensor& t = *found[i].t;
    if (!is_norm(found[i].spec.role)) continue;
    gain_at[i] = at;
    const std::uint32_t es = block_bytes(*t.format);
    bool finite = true;
    for (std::uint64_t e = 0; e < t.shape[0]; ++e) {
      const float w = detail::load_element(t.data + e * es, *t.format);
      finite &= std::isfinite(w);
      out.gains_[at + e] = add_one ? math::gemma_norm_gain(w) : w;
    }
    if (!finite) problems.push_back("tensor " + std::string(t.name) + " contains NaN or Inf"), mismatch = true;
    at += t.shape[0];
  }

  if (!problems.empty()) {
    const std::string msg = mf.path() + ": cannot bind as " + mname + " (" + std::to_string(problems.size()) +
                            (problems.size() == 1 ? " problem):" : " problems):") + detail::join_lines(problems);
    throw error(mismatch ? errc::model_mismatch : errc::format, msg);
  }

  for (std::size_t i = 0; i < found.size(); ++i) {
    const tensor_spec& spec = found[i].spec;
    const tensor_role role = spec.role;
    const source_tensor& t = *found[i].t;
    const tensor_format fmt = *t.format;
    if (is_norm(role)) {
      gain_in(out.weights_, spec) = out.gains_.data() + gain_at[i];
    } else {
      weight_view view;
      view.format = fmt;
      view.data = t.data;
      view.rows = std::int64_t(spec.shape[0]);  // extra HF embedding rows, if any, stay unbound
      view.cols = std::int64_t(spec.shape[1]);
      matrix_in(out.weights_, spec) = view;
    }
    std::uint64_t params = 1;
    for (auto d : t.shape) params *= d;
    out.tensors_.push_back({std::string(t.name), role, spec.layer, fmt, t.shape, t.n_bytes});
    auto& s = out.summary_;
    s.bytes_by_format[std::size_t(fmt)] += t.n_bytes;
    s.tensors_by_format[std::size_t(fmt)] += 1;
    s.total_bytes += t.n_bytes;
    s.parameters += params;
    if (!is_norm(role)) s.matrix_bytes += t.n_bytes;
  }
  out.summary_.gain_bytes = out.gains_.size() * sizeof(float);
  return out;
}

template <class Model>
bound_model<Model> load_model(const std::filesystem::path& path, const load_options& opts = {}) {
  auto file = model_file::open(path);
  if (opts.prefault) file->prefault(opts.progress);
  return bind_model<Model>(std::move(file));
}

// Identify the file among List, bind it as that model and call
// f(type_tag<Model>{}, bound_model<Model>&&); returns what f returns (the same type for every
// Model). Planning-only descriptors in List (Mistral) are skipped.
namespace detail {
template <class List>
struct first_runnable;
template <>
struct first_runnable<type_list<>> {
  using type = void;
};
template <class M0, class... Ms>
struct first_runnable<type_list<M0, Ms...>> {
  using type = std::conditional_t<M0::runnable, M0, typename first_runnable<type_list<Ms...>>::type>;
};
}  // namespace detail

template <class List = all_models, class F>
auto with_model(const std::filesystem::path& path, F&& f, const load_options& opts = {}) {
  auto file = model_file::open(path);
  const std::string_view name = identify_model<List>(*file);
  if (opts.prefault) file->prefault(opts.progress);
  using first = typename detail::first_runnable<List>::type;
  static_assert(!std::is_void_v<first>, "with_model: the list has no runnable model");
  using result = decltype(f(type_tag<first>{}, std::declval<bound_model<first>>()));
  if constexpr (std::is_void_v<result>) {
    bool done = false;
    for_each_type(List{}, [&](auto tag) {
      using M = typename decltype(tag)::type;
      if constexpr (M::runnable) {
        if (!done && M::name == name) {
          done = true;
          f(tag, bind_model<M>(file));
        }
      }
    });
    if (!done) throw error(errc::invalid_argument, file->path() + ": " + std::string(name) + " is a planning-only descriptor and cannot be loaded");
  } else {
    std::optional<result> out;
    for_each_type(List{}, [&](auto tag) {
      using M = typename decltype(tag)::type;
      if constexpr (M::runnable) {
        if (!out && M::name == name) out.emplace(f(tag, bind_model<M>(file)));
      }
    });
    if (!out) throw error(errc::invalid_argument, file->path() + ": " + std::string(name) + " is a planning-only descriptor and cannot be loaded");
    return result(std::move(*out));
  }
}

}  // namespace gemmaforge
