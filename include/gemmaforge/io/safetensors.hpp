#pragma once
// safetensors reader (Hugging Face checkpoints): u64 header length N | N bytes of JSON |
// data. The JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end)} with
// offsets relative to the end of the header, plus an optional "__metadata__" string map.
// Sharded checkpoints list their files in model.safetensors.index.json ("weight_map").
//
// Untrusted input, like GGUF: the header length, JSON nesting, shapes, dtypes and offsets are all
// checked (sizes must equal numel * dtype size, ranges must lie inside the file and must not
// overlap) and failures are gf::error(errc::format, "<file>: <what>"). Tensor data stays in the
// mapping. Only F32, F16 and BF16 can be bound; other known dtypes parse and are reported as
// unsupported when a model needs them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/io/byte_reader.hpp>
#include <gemmaforge/io/mmap_file.hpp>
#include <gemmaforge/io/utf8.hpp>

namespace gemmaforge {

struct safetensors_dtype_info {
  std::string_view name;
  std::uint32_t bytes;
  std::optional<tensor_format> format;
};

inline constexpr safetensors_dtype_info safetensors_dtypes[] = {
    {"F32", 4, tensor_format::f32}, {"F16", 2, tensor_format::f16}, {"BF16", 2, tensor_format::bf16},
    {"F64", 8, std::nullopt},       {"I64", 8, std::nullopt},       {"I32", 4, std::nullopt},
    {"I16", 2, std::nullopt},       {"I8", 1, std::nullopt},        {"U8", 1, std::nullopt},
    {"U16", 2, std::nullopt},       {"U32", 4, std::nullopt},       {"U64", 8, std::nullopt},
    {"BOOL", 1, std::nullopt},      {"F8_E4M3", 1, std::nullopt},   {"F8_E5M2", 1, std::nullopt},
};

constexpr const safetensors_dtype_info* find_safetensors_dtype(std::string_view name) {
  for (const auto& d : safetensors_dtypes)
    if (d.name == name) return &d;
  return nullptr;
}

struct safetensors_tensor {
  std::string name;
  std::string dtype;                    // as the file spells it: "BF16"
  std::optional<tensor_format> format;  // nullopt: a dtype gemmaforge cannot compute with
  std::vector<std::uint64_t> shape;     // outermost first (PyTorch order): [rows, cols]
  std::uint64_t n_elements = 0;
  std::uint64_t begin = 0, end = 0;     // byte range in the data section
  std::uint64_t file_offset = 0;        // absolute offset of the data in the file
  const std::byte* data = nullptr;

  std::string shape_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(shape[i]);
    }
    return s + "]";
  }
};

namespace detail {

// Reject JSON nested deeper than max_depth before handing it to a parser: a hostile "[[[[..."
// must not exhaust the stack. Strings are skipped (brackets inside them do not count).
inline bool json_depth_ok(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') --depth;
  }
  return true;
}

// Parse untrusted JSON text; any failure becomes errc::format naming the file. With
// unique_top_keys, a key repeated in the top-level object is an error (JSON parsers keep only the
// last one silently, which would hide a duplicated tensor name).
inline nlohmann::json parse_json(std::string_view text, const std::string& file, bool unique_top_keys = false,
                                 int max_depth = 64) {
  if (!json_depth_ok(text, max_depth))
    throw error(errc::format, file + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
  try {
    if (!unique_top_keys) return nlohmann::json::parse(text.begin(), text.end());
    std::vector<std::string> keys;
    nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& j) {
      if (ev == nlohmann::json::parse_event_t::key && depth == 1) keys.push_back(j.get<std::string>());
      return true;
    };
    nlohmann::json out = nlohmann::json::parse(text.begin(), text.end(), cb);
    std::sort(keys.begin(), keys.end());
    const auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup != keys.end()) throw error(errc::format, file + ": duplicate key " + quote_for_message(*dup) + " in the header");
    return out;
  } catch (const nlohmann::json::exception& e) {
    throw error(errc::format, file + ": invalid JSON: " + e.what());
  }
}

// A JSON number that must be a non-negative integer (shape entries, offsets).
inline std::uint64_t json_u64(const nlohmann::json& j, const std::string& file, const std::string& what) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  if (j.is_number_integer() && j.get<std::int64_t>() >= 0) return std::uint64_t(j.get<std::int64_t>());
  throw error(errc::format, file + ": " + what + " must be a non-negative integer, got " + j.dump());
}

}  // namespace detail

class safetensors_file {
 public:
  static constexpr std::uint64_t max_header_bytes = 100ull << 20;  // the reference library's limit

  static safetensors_file open(const std::filesystem::path& path) {
    safetensors_file f;
    f.map_ = mapped_file::open(path);
    f.name_ = f.map_.path();
    f.parse_all(f.map_.bytes());
    return f;
  }

  static safetensors_file parse(std::span<const std::byte> bytes, std::string name = "<memory>") {
    safetensors_file f;
    f.name_ = std::move(name);
    f.parse_all(bytes);
    return f;
  }

  safetensors_file(safetensors_file&&) noexcept = default;
  safetensors_file& operator=(safetensors_file&&) noexcept = default;
  safetensors_file(const safetensors_file&) = delete;
  safetensors_file& operator=(const safetensors_file&) = delete;

  const std::string& name() const { return name_; }
  std::span<const std::byte> bytes() const { return bytes_; }
  const mapped_file& mapping() const { return map_; }
  const std::vector<safetensors_tensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const safetensors_tensor* find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }

 private:
  safetensors_file() = default;

  [[noreturn]] void fail(const std::string& what) const { throw error(errc::format, name_ + ": " + what); }

  void parse_all(std::span<const std::byte> bytes) {
    bytes_ = bytes;
    detail::byte_reader r(bytes, name_);
    if (bytes.size() < 8) fail("file is too small to be safetensors (" + std::to_string(bytes.size()) + " bytes)");
    const auto n = r.read<std::uint64_t>("header length");
    if (n > max_header_bytes) fail("header length " + std::to_string(n) + " exceeds the 100 MiB limit (not a safetensors file?)");
    if (n > r.remaining())
      fail("truncated: header claims " + std::to_string(n) + " bytes, file has " + std::to_string(r.remaining()) + " after it");
    if (n < 2) fail("header of " + std::to_string(n) + " bytes cannot hold a JSON object");
    const std::string_view text = r.read_bytes(n, "header");
    if (text.front() != '{') fail("header does not start with '{' (not a safetensors file?)");
    const nlohmann::json header = detail::parse_json(text, name_, /*unique_top_keys=*/true);
    if (!header.is_object()) fail("header is not a JSON object");

    const std::uint64_t data_start = 8 + n;
    const std::uint64_t data_size = bytes.size() - data_start;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& key = it.key();
      const nlohmann::json& v = it.value();
      if (key == "__metadata__") {
        if (!v.is_object()) fail("__metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (!m.value().is_string()) fail("__metadata__['" + m.key() + "'] is not a string");
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      const std::string tn = "tensor " + quote_for_message(key);
      if (key.empty()) fail("a tensor has an empty name");
      if (!v.is_object()) fail(tn + ": entry is not an object");
      const auto dt = v.find("dtype");
      const auto sh = v.find("shape");
      const auto off = v.find("data_offsets");
      if (dt == v.end() || !dt->is_string()) fail(tn + ": missing or non-string \"dtype\"");
      if (sh == v.end() || !sh->is_array()) fail(tn + ": missing or non-array \"shape\"");
      if (off == v.end() || !off->is_array() || off->size() != 2) fail(tn + ": \"data_offsets\" must be [begin, end]");
      safetensors_tensor t;
      t.name = key;
      t.dtype = dt->get<std::string>();
      const safetensors_dtype_info* info = find_safetensors_dtype(t.dtype);
      if (!info) fail(tn + ": unknown dtype " + quote_for_message(t.dtype));
      t.format = info->format;
      if (sh->size() > 8) fail(tn + ": " + std::to_string(sh->size()) + " dimensions");
      t.n_elements = 1;
      for (const auto& d : *sh) {
        const std::uint64_t dim = detail::json_u64(d, name_, tn + " shape entry");
        t.shape.push_back(dim);
        if (!detail::checked_mul(t.n_elements, dim, t.n_elements) || t.n_elements > (std::uint64_t(1) << 56))
          fail(tn + ": absurd element count (shape overflows)");
      }
      t.begin = detail::json_u64((*off)[0], name_, tn + " data_offsets[0]");
      t.end = detail::json_u64((*off)[1], name_, tn + " data_offsets[1]");
      if (t.begin > t.end) fail(tn + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") run backwards");
      if (t.end > data_size)
        fail(tn + ": data [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") runs past the end of the file (" +
             std::to_string(data_size) + " data bytes; truncated file?)");
      const std::uint64_t expected = t.n_elements * info->bytes;
      if (t.end - t.begin != expected)
        fail(tn + ": " + t.dtype + " " + t.shape_string() + " needs " + std::to_string(expected) + " bytes, data_offsets give " +
             std::to_string(t.end - t.begin));
      t.file_offset = data_start + t.begin;
      t.data = bytes.data() + t.file_offset;
      index_.emplace(t.name, tensors_.size());
      tensors_.push_back(std::move(t));
    }
    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tensors_[a].begin < tensors_[b].begin; });
    for (std::size_t k = 1; k < order.size(); ++k) {
      const auto& a = tensors_[order[k - 1]];
      const auto& b = tensors_[order[k]];
      if (a.end > b.begin && b.end > b.begin)
        fail("tensors " + quote_for_message(a.name) + " and " + quote_for_message(b.name) + " overlap in the data section");
    }
  }

  mapped_file map_;
  std::string name_;
  std::span<const std::byte> bytes_;
  std::vector<safetensors_tensor> tensors_;
  std::unordered_map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// ------------------------------------------------------------------------------ checkpoints
// One model's tensors across one or more safetensors files in a directory.
class safetensors_checkpoint {
 public:
  // dir/model.safetensors.index.json when present (sharded), else dir/model.safetensors.
  static safetensors_checkpoint open(const std::filesystem::path& dir) {
    safetensors_checkpoint c;
    c.dir_ = dir.string();
    const auto index = dir / "model.safetensors.index.json";
    const auto single = dir / "model.safetensors";
    if (std::filesystem::exists(index)) {
      const mapped_file m = mapped_file::open(index);
      const std::string_view text(reinterpret_cast<const char*>(m.data()), m.size());
      const nlohmann::json j = detail::parse_json(text, m.path());
      const auto wm = j.is_object() ? j.find("weight_map") : j.end();
      if (!j.is_object() || wm == j.end() || !wm->is_object()) throw error(errc::format, m.path() + ": no \"weight_map\" object");
      std::map<std::string, std::size_t> shard_of_file;
      for (auto it = wm->begin(); it != wm->end(); ++it) {
        if (!it.value().is_string()) throw error(errc::format, m.path() + ": weight_map['" + it.key() + "'] is not a string");
        const std::string file = it.value().get<std::string>();
        // Shards must be plain file names in the same directory (no "../" escapes).
        if (file.empty() || file.find('/') != std::string::npos || file.find('\\') != std::string::npos || file == "." ||
            file == "..")
          throw error(errc::format, m.path() + ": shard name " + quote_for_message(file) + " is not a plain file name");
        if (!shard_of_file.count(file)) {
          shard_of_file[file] = c.shards_.size();
          c.shards_.push_back(safetensors_file::open(dir / file));
        }
        c.expected_[it.key()] = file;
      }
      if (c.shards_.empty()) throw error(errc::format, m.path() + ": weight_map is empty");
    } else if (std::filesystem::exists(single)) {
      c.shards_.push_back(safetensors_file::open(single));
    } else {
      throw error(errc::io, c.dir_ + ": no model.safetensors or model.safetensors.index.json");
    }
    for (std::size_t s = 0; s < c.shards_.size(); ++s)
      for (const auto& t : c.shards_[s].tensors()) {
        auto [it, inserted] = c.where_.emplace(t.name, &t);
        if (!inserted)
          throw error(errc::format, c.dir_ + ": tensor " + quote_for_message(t.name) + " appears in two shards");
      }
    for (const auto& [name, file] : c.expected_)
      if (!c.where_.count(name))
        throw error(errc::format, c.dir_ + ": the index maps tensor " + quote_for_message(name) + " to " + file +
                                      ", which does not contain it");
    return c;
  }

  // cppcheck-suppress unusedFunction ; tokenizer.hpp calls it under __has_include(<nlohmann/json.hpp>), false in the lint
  const std::string& dir() const { return dir_; }
  const std::vector<safetensors_file>& shards() const { return shards_; }
  const safetensors_tensor* find(std::string_view name) const {
    auto it = where_.find(std::string(name));
    return it == where_.end() ? nullptr : it->second;
  }
  std::vector<const safetensors_tensor*> tensors() const {
    std::vector<const safetensors_tensor*> out;
    for (const auto& s : shards_)
      for (const auto& t : s.tensors()) out.push_back(&t);
    return out;
  }

 private:
  std::string dir_;
  std::vector<safetensors_file> shards_;  // element addresses are stable once open() returns
  std::unordered_map<std::string, const safetensors_tensor*> where_;
  std::map<std::string, std::string> expected_;
};

}  // namespace gemmaforge
