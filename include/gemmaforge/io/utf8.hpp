#pragma once
// UTF-8 validation and repair, shared by the file readers (keys and strings must be valid UTF-8)
// and the tokenizer (input text is repaired, detokenized bytes are emitted only as whole
// characters). Follows the Unicode "maximal subpart" practice: each maximal prefix of a
// would-be sequence that cannot be completed becomes one U+FFFD, the same count Python's
// bytes.decode(errors="replace") and WHATWG decoders produce.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gemmaforge {

inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";  // U+FFFD

// What a lead byte announces (Unicode Table 3-7): the sequence length (0: not a lead byte) and the
// allowed range of the second byte, which excludes overlong forms, UTF-16 surrogates (ED A0..BF)
// and code points above U+10FFFF (F4 90..). The one table of lead bytes: the decoders below and
// the grammar matcher's byte-at-a-time string state (grammar/matcher.hpp) read it.
struct utf8_lead {
  std::size_t len = 0;
  std::uint8_t lo = 0x80, hi = 0xBF;
};

constexpr utf8_lead utf8_lead_of(std::uint8_t b0) {
  utf8_lead r;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    r.len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    r.len = 3;
    if (b0 == 0xE0) r.lo = 0xA0;
    if (b0 == 0xED) r.hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    r.len = 4;
    if (b0 == 0xF0) r.lo = 0x90;
    if (b0 == 0xF4) r.hi = 0x8F;
  }
  return r;
}

namespace detail {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not one.
// `valid_prefix` receives how many bytes form a valid-but-incomplete prefix (when the input ends
// early), so a streaming decoder can wait for more; it is 0 for a definite error.
constexpr std::size_t utf8_sequence_at(std::string_view s, std::size_t i, std::size_t* valid_prefix = nullptr) {
  if (valid_prefix) *valid_prefix = 0;
  const auto b0 = static_cast<std::uint8_t>(s[i]);
  if (b0 < 0x80) return 1;
  const auto [len, lo, hi] = utf8_lead_of(b0);
  if (len == 0) return 0;
  std::size_t k = 1;
  for (; k < len; ++k) {
    if (i + k >= s.size()) {
      if (valid_prefix) *valid_prefix = k;
      return 0;
    }
    const auto b = static_cast<std::uint8_t>(s[i + k]);
    const std::uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return 0;
  }
  return len;
}

// Bytes of the maximal subpart at s[i] that is not valid (>= 1): what one U+FFFD replaces.
constexpr std::size_t utf8_invalid_run(std::string_view s, std::size_t i) {
  std::size_t prefix = 0;
  (void)utf8_sequence_at(s, i, &prefix);
  if (prefix > 0) return prefix;  // truncated at the end of the input
  // A lead byte followed by some valid continuation bytes and then a bad one: count the good ones.
  const auto b0 = static_cast<std::uint8_t>(s[i]);
  const auto [len, lo, hi] = utf8_lead_of(b0);
  if (len == 0) return 1;
  std::size_t k = 1;
  for (; k < len && i + k < s.size(); ++k) {
    const auto b = static_cast<std::uint8_t>(s[i + k]);
    const std::uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) break;
  }
  return k;
}

}  // namespace detail

// Offset of the first byte that is not part of valid UTF-8, or npos when all of s is valid.
constexpr std::size_t utf8_first_invalid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = detail::utf8_sequence_at(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

constexpr bool is_valid_utf8(std::string_view s) { return utf8_first_invalid(s) == std::string_view::npos; }

// Bytes in, whole characters out, for text that arrives in pieces (a token's bytes may end in the
// middle of a character: byte-fallback pieces such as <0xE2>). Append to pending(), then take():
// the complete characters at the front, each invalid maximal subpart as one U+FFFD as soon as it
// is certain (and, at the end of the stream, an unfinished tail too), so repair_utf8 of the
// whole input equals the concatenation of every take(). The one streaming decoder: the engine's
// text_stream and the tokenizer's stream_detokenizer (hence tokenizer::decode) both run it.
// After the buffers reach their working size, take() allocates nothing (the engine streams text
// on its stepping thread).
class utf8_stream {
 public:
  void reserve(std::size_t n) {
    pending_.reserve(n);
    out_.reserve(n + 2 * utf8_replacement.size());
  }
  std::string& pending() { return pending_; }
  std::size_t pending_bytes() const { return pending_.size(); }

  // The text completed by what was appended since the last call (valid until the next call).
  std::string_view take(bool at_end = false) {
    out_.clear();
    std::size_t i = 0;
    const std::string_view s = pending_;
    while (i < s.size()) {
      std::size_t prefix = 0;
      const std::size_t n = detail::utf8_sequence_at(s, i, &prefix);
      if (n > 0) {
        out_.append(s.substr(i, n));
        i += n;
      } else if (prefix > 0 && !at_end) {
        break;  // a valid start of a character whose remaining bytes have not arrived yet
      } else {
        out_.append(utf8_replacement);
        i += detail::utf8_invalid_run(s, i);
      }
    }
    pending_.erase(0, i);
    return out_;
  }

  void clear() {
    pending_.clear();
    out_.clear();
  }

 private:
  std::string pending_;
  std::string out_;
};

// s with every invalid maximal subpart replaced by U+FFFD (valid input is returned unchanged).
inline std::string repair_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  utf8_stream u;
  u.pending().assign(s);
  return std::string(u.take(true));
}

// Printable form of a possibly binary string for error messages: at most `max` bytes, control
// characters and invalid UTF-8 escaped as \xNN.
inline std::string quote_for_message(std::string_view s, std::size_t max = 64) {
  std::string out = "'";
  std::size_t i = 0;
  while (i < s.size() && i < max) {
    const std::size_t n = detail::utf8_sequence_at(s, i);
    const auto b = static_cast<unsigned char>(s[i]);
    if (n == 1 && b >= 0x20 && b != 0x7f && b != '\'' && b != '\\') {
      out += char(b);
    } else if (n > 1) {
      out.append(s.substr(i, n));
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 15];
      i += 1;
      continue;
    }
    i += n;
  }
  if (i < s.size()) out += "...";
  out += "'";
  return out;
}

}  // namespace gemmaforge
