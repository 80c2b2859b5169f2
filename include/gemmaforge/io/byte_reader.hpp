#pragma once
// A bounds-checked little-endian cursor over untrusted bytes. Every read checks the remaining
// length first and throws gf::error(errc::format, "<file>: <what>") instead of reading past the
// end, so a truncated or hostile file can only ever produce an error.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <gemmaforge/core/error.hpp>

namespace gemmaforge::detail {

static_assert(std::endian::native == std::endian::little,
              "gemmaforge reads little-endian files with memcpy and supports little-endian hosts only");

class byte_reader {
 public:
  byte_reader(std::span<const std::byte> bytes, std::string_view file) : bytes_(bytes), file_(file) {}

  std::size_t pos() const { return pos_; }
  std::size_t size() const { return bytes_.size(); }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  const std::byte* here() const { return bytes_.data() + pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw error(errc::format, std::string(file_) + ": " + what);
  }

  void need(std::uint64_t n, std::string_view what) const {
    if (n > remaining())
      fail("truncated: " + std::string(what) + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(pos_) + ", only " + std::to_string(remaining()) + " left");
  }

  template <class T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // n raw bytes as a view (no copy); the view lives as long as the underlying buffer.
  std::string_view read_bytes(std::uint64_t n, std::string_view what) {
    need(n, what);
    std::string_view v(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return v;
  }

  void skip(std::uint64_t n, std::string_view what) { (void)read_bytes(n, what); }

  std::string_view file() const { return file_; }

 private:
  std::span<const std::byte> bytes_;
  std::string_view file_;
  std::size_t pos_ = 0;
};

// a * b, or false on overflow.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}
inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_add_overflow(a, b, &out);
}

}  // namespace gemmaforge::detail
