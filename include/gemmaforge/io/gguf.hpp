#pragma once
// GGUF reader (versions 2 and 3; little-endian). Layout, from the ggml docs:
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count  x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | data section (each offset is relative to it)
// where string = u64 length + bytes (no terminator) and an array value = u32 element type +
// u64 count + elements (arrays may nest).
//
// The file is untrusted input. Every read is bounds-checked, every count is checked against the
// bytes that remain before anything is allocated for it (a 2^60 count in a 1 KB file is an error,
// not a std::bad_alloc), nesting is capped, strings must be UTF-8, tensor data must be aligned,
// inside the file and non-overlapping. Failures throw gf::error(errc::format, "<file>: <what>").
// Nothing is copied: strings, numeric arrays and tensor data are views into the mapping.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/io/byte_reader.hpp>
#include <gemmaforge/io/mmap_file.hpp>
#include <gemmaforge/io/utf8.hpp>

namespace gemmaforge {

// ------------------------------------------------------------------------------ value types
enum class gguf_type : std::uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

constexpr std::string_view to_string(gguf_type t) {
  switch (t) {
    case gguf_type::u8: return "u8";
    case gguf_type::i8: return "i8";
    case gguf_type::u16: return "u16";
    case gguf_type::i16: return "i16";
    case gguf_type::u32: return "u32";
    case gguf_type::i32: return "i32";
    case gguf_type::f32: return "f32";
    case gguf_type::boolean: return "bool";
    case gguf_type::string: return "string";
    case gguf_type::array: return "array";
    case gguf_type::u64: return "u64";
    case gguf_type::i64: return "i64";
    case gguf_type::f64: return "f64";
  }
  return "?";
}

// Bytes of one scalar of type t (0 for string and array, whose size varies).
constexpr std::size_t gguf_scalar_size(gguf_type t) {
  switch (t) {
    case gguf_type::u8: case gguf_type::i8: case gguf_type::boolean: return 1;
    case gguf_type::u16: case gguf_type::i16: return 2;
    case gguf_type::u32: case gguf_type::i32: case gguf_type::f32: return 4;
    case gguf_type::u64: case gguf_type::i64: case gguf_type::f64: return 8;
    case gguf_type::string: case gguf_type::array: return 0;
  }
  return 0;
}

constexpr bool gguf_is_integer(gguf_type t) {
  switch (t) {
    case gguf_type::u8: case gguf_type::i8: case gguf_type::u16: case gguf_type::i16:
    case gguf_type::u32: case gguf_type::i32: case gguf_type::u64: case gguf_type::i64: return true;
    default: return false;
  }
}
constexpr bool gguf_is_signed(gguf_type t) {
  return t == gguf_type::i8 || t == gguf_type::i16 || t == gguf_type::i32 || t == gguf_type::i64;
}
constexpr bool gguf_is_float(gguf_type t) { return t == gguf_type::f32 || t == gguf_type::f64; }

// ------------------------------------------------------------------------- ggml tensor types
// Every ggml type id we know the block geometry of. Known ids parse (their byte sizes are checked
// like any other); only those with a gemmaforge tensor_format can be bound to a model.
struct ggml_type_info {
  std::uint32_t id;
  std::string_view name;
  std::uint32_t block_elems;
  std::uint32_t block_bytes;
  std::optional<tensor_format> format;
};

inline constexpr ggml_type_info ggml_types[] = {
    {0, "f32", 1, 4, tensor_format::f32},
    {1, "f16", 1, 2, tensor_format::f16},
    {2, "q4_0", 32, 18, std::nullopt},
    {3, "q4_1", 32, 20, std::nullopt},
    {6, "q5_0", 32, 22, tensor_format::q5_0},
    {7, "q5_1", 32, 24, std::nullopt},
    {8, "q8_0", 32, 34, tensor_format::q8_0},
    {9, "q8_1", 32, 36, std::nullopt},
    {10, "q2_k", 256, 84, std::nullopt},
    {11, "q3_k", 256, 110, std::nullopt},
    {12, "q4_k", 256, 144, tensor_format::q4_k},
    {13, "q5_k", 256, 176, std::nullopt},
    {14, "q6_k", 256, 210, tensor_format::q6_k},
    {15, "q8_k", 256, 292, std::nullopt},
    {16, "iq2_xxs", 256, 66, std::nullopt},
    {17, "iq2_xs", 256, 74, std::nullopt},
    {18, "iq3_xxs", 256, 98, std::nullopt},
    {19, "iq1_s", 256, 50, std::nullopt},
    {20, "iq4_nl", 32, 18, std::nullopt},
    {21, "iq3_s", 256, 110, std::nullopt},
    {22, "iq2_s", 256, 82, std::nullopt},
    {23, "iq4_xs", 256, 136, std::nullopt},
    {24, "i8", 1, 1, std::nullopt},
    {25, "i16", 1, 2, std::nullopt},
    {26, "i32", 1, 4, std::nullopt},
    {27, "i64", 1, 8, std::nullopt},
    {28, "f64", 1, 8, std::nullopt},
    {29, "iq1_m", 256, 56, std::nullopt},
    {30, "bf16", 1, 2, tensor_format::bf16},
    {34, "tq1_0", 256, 54, std::nullopt},
    {35, "tq2_0", 256, 66, std::nullopt},
    {39, "mxfp4", 32, 17, std::nullopt},
};

constexpr const ggml_type_info* find_ggml_type(std::uint32_t id) {
  for (const auto& t : ggml_types)
    if (t.id == id) return &t;
  return nullptr;
}

// ------------------------------------------------------------------------------------ values
class gguf_value {
 public:
  gguf_type type() const { return type_; }
  bool is_array() const { return type_ == gguf_type::array; }
  // Array element type and count (arrays only).
  gguf_type element_type() const { return elem_type_; }
  std::uint64_t size() const { return count_; }

  // Scalar payloads (valid for the matching type class).
  std::uint64_t raw_unsigned() const { return u_; }
  std::int64_t raw_signed() const { return i_; }
  double raw_float() const { return f_; }
  bool raw_bool() const { return b_; }
  std::string_view raw_string() const { return s_; }

  // Array payloads: numeric/bool elements are contiguous little-endian scalars in the file (read
  // through element()); string elements and nested arrays are parsed.
  const std::vector<std::string_view>& strings() const { return strings_; }
  const std::vector<gguf_value>& arrays() const { return nested_; }

  // Element i of a numeric or bool array, as the stored scalar converted to T without checks
  // (callers check ranges; see gguf_file::get_array).
  template <class T>
  T element(std::size_t i) const {
    const std::byte* p = raw_ + i * gguf_scalar_size(elem_type_);
    auto load = [p]<class U>(U) { U v; std::memcpy(&v, p, sizeof(U)); return v; };
    switch (elem_type_) {
      case gguf_type::u8: return static_cast<T>(load(std::uint8_t{}));
      case gguf_type::i8: return static_cast<T>(load(std::int8_t{}));
      case gguf_type::u16: return static_cast<T>(load(std::uint16_t{}));
      case gguf_type::i16: return static_cast<T>(load(std::int16_t{}));
      case gguf_type::u32: return static_cast<T>(load(std::uint32_t{}));
      case gguf_type::i32: return static_cast<T>(load(std::int32_t{}));
      case gguf_type::u64: return static_cast<T>(load(std::uint64_t{}));
      case gguf_type::i64: return static_cast<T>(load(std::int64_t{}));
      case gguf_type::f32: return static_cast<T>(load(float{}));
      case gguf_type::f64: return static_cast<T>(load(double{}));
      case gguf_type::boolean: return static_cast<T>(load(std::uint8_t{}) != 0);
      default: return T{};
    }
  }

  // Readable type: "u32", "array of string", "array of array of f32".
  std::string type_name() const {
    if (!is_array()) return std::string(to_string(type_));
    if (elem_type_ == gguf_type::array)
      return nested_.empty() ? "array of array" : "array of " + nested_.front().type_name();
    return "array of " + std::string(to_string(elem_type_));
  }

 private:
  friend class gguf_file;
  gguf_type type_ = gguf_type::u8;
  gguf_type elem_type_ = gguf_type::u8;
  std::uint64_t u_ = 0;
  std::int64_t i_ = 0;
  double f_ = 0;
  bool b_ = false;
  std::string_view s_;
  const std::byte* raw_ = nullptr;
  std::uint64_t count_ = 0;
  std::vector<std::string_view> strings_;
  std::vector<gguf_value> nested_;
};

// --------------------------------------------------------------------------------- tensors
struct gguf_tensor {
  std::string_view name;
  std::uint32_t n_dims = 0;
  std::array<std::uint64_t, 4> dims{1, 1, 1, 1};  // dims[0] varies fastest (the length of a row)
  std::uint32_t ggml_type = 0;
  std::string_view type_name;               // "q4_k"
  std::optional<tensor_format> format;      // nullopt: a ggml type gemmaforge cannot compute with
  std::uint64_t offset = 0;                 // from the start of the data section
  std::uint64_t n_elements = 0;
  std::uint64_t n_bytes = 0;
  const std::byte* data = nullptr;          // into the file's bytes

  std::string shape_string() const {  // "[640, 262144]" (GGUF order, fastest first)
    std::string s = "[";
    for (std::uint32_t i = 0; i < n_dims; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims[i]);
    }
    return s + "]";
  }
};

// ------------------------------------------------------------------------------------ file
class gguf_file {
 public:
  static constexpr std::uint32_t magic = 0x46554747;  // "GGUF" read as a little-endian u32
  static constexpr std::uint32_t default_alignment = 32;
  static constexpr int max_array_depth = 8;          // nested arrays deeper than this are refused
  static constexpr std::uint32_t max_dims = 4;       // GGML_MAX_DIMS

  // Map and parse a file; the result owns the mapping.
  static gguf_file open(const std::filesystem::path& path) {
    gguf_file f;
    f.map_ = mapped_file::open(path);
    f.name_ = f.map_.path();
    f.parse_all(f.map_.bytes());
    return f;
  }

  // Parse bytes the caller keeps alive (fuzzing, tests, embedded models). `name` labels errors.
  static gguf_file parse(std::span<const std::byte> bytes, std::string name = "<memory>") {
    gguf_file f;
    f.name_ = std::move(name);
    f.parse_all(bytes);
    return f;
  }

  gguf_file(gguf_file&&) noexcept = default;
  gguf_file& operator=(gguf_file&&) noexcept = default;
  gguf_file(const gguf_file&) = delete;
  gguf_file& operator=(const gguf_file&) = delete;

  const std::string& name() const { return name_; }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }
  std::span<const std::byte> bytes() const { return bytes_; }
  const mapped_file& mapping() const { return map_; }

  // ------------------------------------------------------------------------- metadata
  struct entry {
    std::string_view key;
    gguf_value value;
  };
  const std::vector<entry>& metadata() const { return entries_; }
  bool has(std::string_view key) const { return index_.count(key) != 0; }
  const gguf_value* find(std::string_view key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &entries_[it->second].value;
  }
  const gguf_value& at(std::string_view key) const {
    if (const gguf_value* v = find(key)) return *v;
    fail("metadata key '" + std::string(key) + "' is missing");
  }

  // Typed getters: integers of any stored width are accepted when the value fits; floats must be
  // finite; a missing key or a wrong type is an error naming the key and both types.
  std::uint32_t get_u32(std::string_view key) const { return get_int<std::uint32_t>(key); }
  std::int32_t get_i32(std::string_view key) const { return get_int<std::int32_t>(key); }
  std::uint64_t get_u64(std::string_view key) const { return get_int<std::uint64_t>(key); }
  std::int64_t get_i64(std::string_view key) const { return get_int<std::int64_t>(key); }
  float get_f32(std::string_view key) const { return static_cast<float>(get_f64(key)); }
  double get_f64(std::string_view key) const { return to_float(key, at(key)); }
  bool get_bool(std::string_view key) const {
    const gguf_value& v = at(key);
    if (v.type() != gguf_type::boolean) wrong_type(key, v, "bool");
    return v.raw_bool();
  }
  std::string_view get_string(std::string_view key) const {
    const gguf_value& v = at(key);
    if (v.type() != gguf_type::string) wrong_type(key, v, "string");
    return v.raw_string();
  }

  // Same, nullopt when the key is absent (a present key of the wrong type is still an error).
  std::optional<std::uint32_t> find_u32(std::string_view key) const {
    return has(key) ? std::optional(get_u32(key)) : std::nullopt;
  }
  std::optional<double> find_f64(std::string_view key) const {
    return has(key) ? std::optional(get_f64(key)) : std::nullopt;
  }
  std::optional<bool> find_bool(std::string_view key) const {
    return has(key) ? std::optional(get_bool(key)) : std::nullopt;
  }
  std::optional<std::string_view> find_string(std::string_view key) const {
    return has(key) ? std::optional(get_string(key)) : std::nullopt;
  }

  // A whole array, converted element by element with the same rules as the scalar getters.
  // T: an integer type, float, double, bool, std::string_view or std::string.
  template <class T>
  std::vector<T> get_array(std::string_view key) const {
    const gguf_value& v = at(key);
    if (!v.is_array()) wrong_type(key, v, "array");
    std::vector<T> out;
    if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>) {
      if (v.element_type() != gguf_type::string) wrong_type(key, v, "array of string");
      out.assign(v.strings().begin(), v.strings().end());
    } else if constexpr (std::is_same_v<T, bool>) {
      if (v.element_type() != gguf_type::boolean) wrong_type(key, v, "array of bool");
      out.reserve(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) out.push_back(v.element<bool>(i));
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!gguf_is_float(v.element_type()) && !gguf_is_integer(v.element_type()))
        wrong_type(key, v, "array of numbers");
      out.reserve(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        const double d = gguf_is_float(v.element_type()) ? v.element<double>(i)
                         : gguf_is_signed(v.element_type()) ? double(v.element<std::int64_t>(i))
                                                            : double(v.element<std::uint64_t>(i));
        if (!std::isfinite(d))
          fail("metadata key '" + std::string(key) + "': element " + std::to_string(i) + " is " +
               (std::isnan(d) ? "NaN" : "infinite"));
        out.push_back(static_cast<T>(d));
      }
    } else {
      static_assert(std::is_integral_v<T>, "get_array<T>: unsupported element type");
      if (!gguf_is_integer(v.element_type())) wrong_type(key, v, "array of integers");
      out.reserve(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        bool ok = false;
        T x{};
        if (gguf_is_signed(v.element_type())) {
          const std::int64_t s = v.element<std::int64_t>(i);
          ok = std::in_range<T>(s);
          x = static_cast<T>(s);
        } else {
          const std::uint64_t u = v.element<std::uint64_t>(i);
          ok = std::in_range<T>(u);
          x = static_cast<T>(u);
        }
        if (!ok) fail("metadata key '" + std::string(key) + "': element " + std::to_string(i) + " is out of range");
        out.push_back(x);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------- tensors
  std::span<const gguf_tensor> tensors() const { return tensors_; }
  const gguf_tensor* find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }

  [[noreturn]] void fail(const std::string& what) const { throw error(errc::format, name_ + ": " + what); }

 private:
  gguf_file() = default;

  [[noreturn]] void wrong_type(std::string_view key, const gguf_value& v, std::string_view expected) const {
    fail("metadata key '" + std::string(key) + "' has type " + v.type_name() + ", expected " + std::string(expected));
  }

  template <class T>
  T get_int(std::string_view key) const {
    const gguf_value& v = at(key);
    if (!gguf_is_integer(v.type())) wrong_type(key, v, std::is_signed_v<T> ? "a signed integer" : "an unsigned integer");
    const bool fits = gguf_is_signed(v.type()) ? std::in_range<T>(v.raw_signed()) : std::in_range<T>(v.raw_unsigned());
    if (!fits) {
      const std::string shown = gguf_is_signed(v.type()) ? std::to_string(v.raw_signed()) : std::to_string(v.raw_unsigned());
      fail("metadata key '" + std::string(key) + "' = " + shown + " is out of range for " +
           (std::is_signed_v<T> ? "i" : "u") + std::to_string(8 * sizeof(T)));
    }
    return gguf_is_signed(v.type()) ? static_cast<T>(v.raw_signed()) : static_cast<T>(v.raw_unsigned());
  }

  double to_float(std::string_view key, const gguf_value& v) const {
    double d = 0;
    if (gguf_is_float(v.type())) d = v.raw_float();
    else if (gguf_is_integer(v.type())) d = gguf_is_signed(v.type()) ? double(v.raw_signed()) : double(v.raw_unsigned());
    else wrong_type(key, v, "a number");
    if (std::isnan(d)) fail("metadata key '" + std::string(key) + "' is NaN, expected a number");
    if (std::isinf(d)) fail("metadata key '" + std::string(key) + "' is infinite, expected a finite number");
    return d;
  }

  // ------------------------------------------------------------------------------ parser
  // Counts are only bounded by the file size (a 250 MB file "could hold" 30 M strings), so
  // reserve at most a modest amount up front and let real elements grow the vectors.
  static std::size_t reserve_hint(std::uint64_t count) { return static_cast<std::size_t>(std::min<std::uint64_t>(count, 1u << 18)); }

  // `describe()` names the string for error messages; it is only called on failure, so the hot
  // loop over a 262k-token vocabulary builds no message strings.
  template <class Describe>
  std::string_view read_string(detail::byte_reader& r, Describe&& describe) {
    if (r.remaining() < 8) r.need(8, describe() + " length");
    const auto len = r.read<std::uint64_t>("string length");
    if (len > r.remaining())
      r.fail("truncated or corrupt: " + describe() + " claims " + std::to_string(len) + " bytes at offset " +
             std::to_string(r.pos() - 8) + ", only " + std::to_string(r.remaining()) + " left");
    const std::size_t at = r.pos();
    const std::string_view s = r.read_bytes(len, "string");
    const std::size_t bad = utf8_first_invalid(s);
    if (bad != std::string_view::npos)
      r.fail(describe() + " is not valid UTF-8 (byte " + std::to_string(at + bad) + "): " + quote_for_message(s));
    return s;
  }

  gguf_value read_value(detail::byte_reader& r, gguf_type t, const std::string& key, int depth) {
    gguf_value v;
    v.type_ = t;
    switch (t) {
      case gguf_type::u8: v.u_ = r.read<std::uint8_t>(key); break;
      case gguf_type::u16: v.u_ = r.read<std::uint16_t>(key); break;
      case gguf_type::u32: v.u_ = r.read<std::uint32_t>(key); break;
      case gguf_type::u64: v.u_ = r.read<std::uint64_t>(key); break;
      case gguf_type::i8: {
        const std::int8_t i8 = r.read<std::int8_t>(key);  // a number: sign extension intended
        v.i_ = i8;
        break;
      }
      case gguf_type::i16: v.i_ = r.read<std::int16_t>(key); break;
      case gguf_type::i32: v.i_ = r.read<std::int32_t>(key); break;
      case gguf_type::i64: v.i_ = r.read<std::int64_t>(key); break;
      case gguf_type::f32: v.f_ = r.read<float>(key); break;
      case gguf_type::f64: v.f_ = r.read<double>(key); break;
      case gguf_type::boolean: {
        const auto b = r.read<std::uint8_t>(key);
        if (b > 1) r.fail("metadata key '" + key + "': bool value " + std::to_string(b) + " is neither 0 nor 1");
        v.b_ = b != 0;
        break;
      }
      case gguf_type::string:
        v.s_ = read_string(r, [&] { return "metadata key '" + key + "': string value"; });
        break;
      case gguf_type::array: {
        if (depth >= max_array_depth)
          r.fail("metadata key '" + key + "': arrays nested deeper than " + std::to_string(max_array_depth));
        const auto et = r.read<std::uint32_t>("array element type of '" + key + "'");
        if (et > std::uint32_t(gguf_type::f64))
          r.fail("metadata key '" + key + "': unknown array element type " + std::to_string(et));
        v.elem_type_ = gguf_type(et);
        v.count_ = r.read<std::uint64_t>("array length of '" + key + "'");
        // Smallest possible encoding of one element: a guard against absurd counts before any
        // allocation or loop (strings need their 8-byte length, arrays type + length).
        const std::uint64_t min_elem = v.elem_type_ == gguf_type::string  ? 8
                                       : v.elem_type_ == gguf_type::array ? 12
                                                                          : gguf_scalar_size(v.elem_type_);
        std::uint64_t need = 0;
        if (!detail::checked_mul(v.count_, min_elem, need) || need > r.remaining())
          r.fail("metadata key '" + key + "': array of " + std::to_string(v.count_) + " " +
                 std::string(to_string(v.elem_type_)) + " elements does not fit in the " +
                 std::to_string(r.remaining()) + " bytes left (corrupt count or truncated file)");
        if (v.elem_type_ == gguf_type::string) {
          v.strings_.reserve(reserve_hint(v.count_));
          for (std::uint64_t i = 0; i < v.count_; ++i)
            v.strings_.push_back(read_string(r, [&] { return "metadata key '" + key + "': element " + std::to_string(i); }));
        } else if (v.elem_type_ == gguf_type::array) {
          v.nested_.reserve(reserve_hint(v.count_));
          for (std::uint64_t i = 0; i < v.count_; ++i)
            v.nested_.push_back(read_value(r, gguf_type::array, key + "[" + std::to_string(i) + "]", depth + 1));
        } else {
          v.raw_ = r.here();
          if (v.elem_type_ == gguf_type::boolean) {
            for (std::uint64_t i = 0; i < v.count_; ++i)
              if (static_cast<std::uint8_t>(v.raw_[i]) > 1)
                r.fail("metadata key '" + key + "': bool element " + std::to_string(i) + " is neither 0 nor 1");
          }
          r.skip(need, "array data of '" + key + "'");
        }
        break;
      }
      default: r.fail("metadata key '" + key + "' has unknown value type " + std::to_string(std::uint32_t(t)));
    }
    return v;
  }

  void parse_all(std::span<const std::byte> bytes) {
    bytes_ = bytes;
    detail::byte_reader r(bytes, name_);
    if (bytes.size() < 4) r.fail("file is too small to be GGUF (" + std::to_string(bytes.size()) + " bytes)");
    const auto m = r.read<std::uint32_t>("magic");
    if (m != magic) {
      static constexpr char hex[] = "0123456789abcdef";
      std::string shown;
      for (int i = 0; i < 4; ++i) {
        const auto b = static_cast<std::uint8_t>(bytes[std::size_t(i)]);
        shown += hex[b >> 4];
        shown += hex[b & 15];
      }
      r.fail("not a GGUF file: magic bytes are 0x" + shown + ", expected 'GGUF' (0x47475546)");
    }
    version_ = r.read<std::uint32_t>("version");
    if (version_ == 1) r.fail("GGUF version 1 (32-bit counts) is not supported; convert the model again");
    if (version_ != 2 && version_ != 3) {
      if (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3)
        r.fail("big-endian GGUF files are not supported");
      r.fail("unsupported GGUF version " + std::to_string(version_) + " (2 and 3 are supported)");
    }
    const auto n_tensors = r.read<std::uint64_t>("tensor count");
    const auto n_kv = r.read<std::uint64_t>("metadata count");
    // Smallest encodings: a kv is key length + 1 byte of key + type + 1 byte of value (14 B);
    // a tensor info is name length + 1 byte + n_dims + one dim + type + offset (33 B).
    if (n_kv > r.remaining() / 14)
      r.fail("metadata count " + std::to_string(n_kv) + " is more than the file could hold (corrupt header)");
    if (n_tensors > r.remaining() / 33)
      r.fail("tensor count " + std::to_string(n_tensors) + " is more than the file could hold (corrupt header)");

    entries_.reserve(reserve_hint(n_kv));
    for (std::uint64_t i = 0; i < n_kv; ++i) {
      const std::string_view key = read_string(r, [&] { return "metadata key #" + std::to_string(i); });
      if (key.empty()) r.fail("metadata key #" + std::to_string(i) + " is empty");
      const std::string key_s(key);
      const auto t = r.read<std::uint32_t>("value type of '" + key_s + "'");
      if (t > std::uint32_t(gguf_type::f64))
        r.fail("metadata key '" + key_s + "' has unknown value type " + std::to_string(t));
      gguf_value v = read_value(r, gguf_type(t), key_s, 0);
      if (!index_.emplace(key, entries_.size()).second) r.fail("duplicate metadata key '" + key_s + "'");
      entries_.push_back({key, std::move(v)});
    }

    alignment_ = default_alignment;
    if (const gguf_value* a = find("general.alignment")) {
      if (a->type() != gguf_type::u32) fail("general.alignment has type " + a->type_name() + ", expected u32");
      const auto al = a->raw_unsigned();
      if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20))
        fail("general.alignment = " + std::to_string(al) + " is not a power of two in [1, 2^20]");
      alignment_ = static_cast<std::uint32_t>(al);
    }

    tensors_.reserve(reserve_hint(n_tensors));
    for (std::uint64_t i = 0; i < n_tensors; ++i) {
      gguf_tensor t;
      t.name = read_string(r, [&] { return "tensor name #" + std::to_string(i); });
      if (t.name.empty()) r.fail("tensor #" + std::to_string(i) + " has an empty name");
      const std::string tn = "tensor '" + std::string(t.name) + "'";
      t.n_dims = r.read<std::uint32_t>(tn + " dimension count");
      if (t.n_dims < 1 || t.n_dims > max_dims)
        r.fail(tn + " has " + std::to_string(t.n_dims) + " dimensions (1 to 4 supported)");
      t.n_elements = 1;
      for (std::uint32_t d = 0; d < t.n_dims; ++d) {
        t.dims[d] = r.read<std::uint64_t>(tn + " dimensions");
        if (t.dims[d] == 0) r.fail(tn + " has a zero-sized dimension " + std::to_string(d));
        if (!detail::checked_mul(t.n_elements, t.dims[d], t.n_elements) || t.n_elements > (std::uint64_t(1) << 56))
          r.fail(tn + " has an absurd element count (dimensions overflow)");
      }
      t.ggml_type = r.read<std::uint32_t>(tn + " type");
      const ggml_type_info* ti = find_ggml_type(t.ggml_type);
      if (!ti) r.fail(tn + " has unknown ggml type id " + std::to_string(t.ggml_type));
      t.type_name = ti->name;
      t.format = ti->format;
      t.offset = r.read<std::uint64_t>(tn + " data offset");
      if (t.dims[0] % ti->block_elems != 0)
        r.fail(tn + ": row length " + std::to_string(t.dims[0]) + " is not a multiple of the " +
               std::string(ti->name) + " block size " + std::to_string(ti->block_elems));
      t.n_bytes = t.n_elements / ti->block_elems * ti->block_bytes;  // < 2^56 * 292: no overflow
      if (!tensor_index_.emplace(t.name, tensors_.size()).second) r.fail("duplicate tensor name '" + std::string(t.name) + "'");
      tensors_.push_back(t);
    }

    // The data section starts at the next multiple of the alignment.
    const std::uint64_t end_of_infos = r.pos();
    data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
    if (!tensors_.empty() && data_offset_ > bytes.size())
      fail("truncated: the data section would start at offset " + std::to_string(data_offset_) +
           " but the file has " + std::to_string(bytes.size()) + " bytes");
    const std::uint64_t data_size = bytes.size() > data_offset_ ? bytes.size() - data_offset_ : 0;
    for (gguf_tensor& t : tensors_) {
      const std::string tn = "tensor '" + std::string(t.name) + "'";
      if (t.offset % alignment_ != 0)
        fail(tn + ": data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
             std::to_string(alignment_));
      std::uint64_t end = 0;
      if (!detail::checked_add(t.offset, t.n_bytes, end) || end > data_size)
        fail(tn + ": data [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.n_bytes) +
             ") of the data section runs past the end of the file (the data section has " +
             std::to_string(data_size) + " bytes; truncated file?)");
      t.data = bytes.data() + data_offset_ + t.offset;
    }
    // No two tensors may share bytes: sort by offset and compare neighbours.
    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return tensors_[a].offset < tensors_[b].offset; });
    for (std::size_t k = 1; k < order.size(); ++k) {
      const gguf_tensor& a = tensors_[order[k - 1]];
      const gguf_tensor& b = tensors_[order[k]];
      if (a.offset + a.n_bytes > b.offset)
        fail("tensors '" + std::string(a.name) + "' and '" + std::string(b.name) + "' overlap in the data section");
    }
  }

  mapped_file map_;
  std::string name_;
  std::span<const std::byte> bytes_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = default_alignment;
  std::uint64_t data_offset_ = 0;
  std::vector<entry> entries_;
  std::unordered_map<std::string_view, std::size_t> index_;
  std::vector<gguf_tensor> tensors_;
  std::unordered_map<std::string_view, std::size_t> tensor_index_;
};

}  // namespace gemmaforge
