#pragma once
// The incremental matcher: a deterministic pushdown automaton over bytes that follows a
// compiled_grammar. Its whole state is a matcher_state (a fixed-size value: a stack of at most
// max_depth frames, one per open JSON value), so a token mask can copy it at every trie node and
// nothing is allocated while matching.
//
// feed() returns false for a byte that cannot continue any valid output (the state is then
// unspecified: callers feed a copy). The output is JSON as RFC 8259 writes it, with these
// choices: whitespace runs between tokens of at most max_whitespace_run bytes (so a model cannot
// loop on spaces), numbers of at most max_number_digits digits, strings of valid UTF-8 (no
// overlong forms, no surrogates) and of any length, output nesting of at most max_depth values.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <gemmaforge/grammar/grammar.hpp>
#include <gemmaforge/io/utf8.hpp>

namespace gemmaforge::grammar {

inline constexpr int max_depth = 32;
inline constexpr int max_whitespace_run = 16;
inline constexpr int max_number_digits = 32;

struct frame {
  std::int32_t node = -1;
  std::uint8_t state = 0;
  std::uint8_t lo = 0x80, hi = 0xbf;  // strings: the range the next UTF-8 continuation byte must be in
  std::uint8_t unused = 0;
  std::int32_t a = 0;                 // object: property index; array: items so far; literal: candidate; number: digits
  std::int32_t b = 0;                 // object key / literal: bytes matched
};

struct matcher_state {
  std::int16_t depth = 0;
  std::int16_t ws = 0;  // whitespace bytes in the current run
  frame f[max_depth];
};

// Copies only the live frames: a mask copies a state per trie node.
inline void copy_state(matcher_state& dst, const matcher_state& src) {
  dst.depth = src.depth;
  dst.ws = src.ws;
  std::memcpy(dst.f, src.f, sizeof(frame) * std::size_t(src.depth));
}

class matcher {
 public:
  using state_type = matcher_state;
  explicit matcher(const compiled_grammar& g) : g_(g) {}

  matcher_state start() const {
    matcher_state s;
    s.depth = 1;
    s.f[0] = frame{};
    s.f[0].node = g_.root;
    return s;
  }

  // Every value is closed: nothing more may follow.
  static bool complete(const matcher_state& s) { return s.depth == 0; }
  static bool unconstrained(const matcher_state&) { return false; }

  // The output so far is a whole value (it may still grow: a root number takes more digits).
  bool accepting(const matcher_state& s) const {
    return s.depth == 0 || (s.depth == 1 && may_end(s.f[0]));
  }

  // Inside a string, where any character but '"', '\\' and control characters keeps the state
  // as it is: the token mask's fast path (token_mask.hpp).
  bool in_plain_string(const matcher_state& s) const {
    if (s.depth == 0) return false;
    const frame& t = s.f[s.depth - 1];
    return g_.nodes[std::size_t(t.node)].kind == node_kind::string && t.state == s_in;
  }

  bool feed(matcher_state& s, std::uint8_t c) const {
    const bool ws = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    for (;;) {
      if (s.depth == 0) return false;
      frame& t = s.f[s.depth - 1];
      const node& n = g_.nodes[std::size_t(t.node)];
      // Whitespace before a value and around punctuation: bounded runs.
      if (ws && allows_whitespace(n, t)) {
        if (s.ws >= max_whitespace_run) return false;
        ++s.ws;
        return true;
      }
      if (!in_string(n, t)) s.ws = 0;
      switch (n.kind) {
        case node_kind::object: {
          const step r = object_byte(s, t, n, c);
          if (r != step::redo) return r == step::ok;
          continue;
        }
        case node_kind::array: {
          const step r = array_byte(s, t, n, c);
          if (r != step::redo) return r == step::ok;
          continue;
        }
        case node_kind::string: return string_byte(s, t, c);
        case node_kind::number:
        case node_kind::integer: {
          const step r = number_byte(s, t, n.kind == node_kind::integer, c);
          if (r != step::redo) return r == step::ok;
          continue;
        }
        case node_kind::literals: {
          const step r = literal_byte(s, t, n, c);
          if (r != step::redo) return r == step::ok;
          continue;
        }
        case node_kind::choice: {
          const std::int32_t alt = g_.first_byte_tables[std::size_t(n.first_byte_table)][c];
          if (alt < 0) return false;
          t = frame{};
          t.node = alt;
          continue;  // the alternative reads the byte
        }
      }
      return false;
    }
  }

  bool feed(matcher_state& s, std::string_view bytes) const {
    for (char c : bytes)
      if (!feed(s, std::uint8_t(c))) return false;
    return true;
  }

 private:
  enum class step { ok, fail, redo };  // redo: the byte goes to the frame now on top
  // States. object: before '{', after '{', in a key, before ':', after a value, after ','.
  static constexpr std::uint8_t o_start = 0, o_open = 1, o_key = 2, o_colon = 3, o_after = 4, o_comma = 5;
  static constexpr std::uint8_t a_start = 0, a_open = 1, a_after = 2, a_comma = 3;
  static constexpr std::uint8_t s_start = 0, s_in = 1, s_utf8 = 2, s_escape = 3, s_hex = 4;
  static constexpr std::uint8_t n_start = 0, n_minus = 1, n_zero = 2, n_int = 3, n_dot = 4, n_frac = 5, n_e = 6, n_esign = 7,
                                n_exp = 8;
  static constexpr std::uint8_t l_start = 0, l_in = 1;

  static bool in_string(const node& n, const frame& t) { return n.kind == node_kind::string && t.state != s_start; }

  static bool allows_whitespace(const node& n, const frame& t) {
    switch (n.kind) {
      case node_kind::object: return t.state != o_key;
      case node_kind::array: return true;
      case node_kind::string: return t.state == s_start;
      case node_kind::number:
      case node_kind::integer: return t.state == n_start;
      case node_kind::literals: return t.state == l_start;
      case node_kind::choice: return true;
    }
    return false;
  }

  bool may_end(const frame& t) const {
    const node& n = g_.nodes[std::size_t(t.node)];
    switch (n.kind) {
      case node_kind::number:
      case node_kind::integer: return t.state == n_zero || t.state == n_int || t.state == n_frac || t.state == n_exp;
      case node_kind::literals:
        return t.state == l_in && std::int32_t(g_.literals[std::size_t(t.a)].size()) == t.b && n.first_continuation < 0;
      default: return false;
    }
  }

  static bool push(matcher_state& s, std::int32_t node, std::uint8_t state = 0) {
    if (s.depth >= max_depth) return false;
    frame& f = s.f[s.depth++];
    f = frame{};
    f.node = node;
    f.state = state;
    return true;
  }

  const std::string& key(const node& n, std::int32_t i) const { return g_.properties[std::size_t(n.first_property) + std::size_t(i)].key_text; }

  step object_byte(matcher_state& s, frame& t, const node& n, std::uint8_t c) const {
    const bool declared = !n.any_keys;
    auto may_close = [&] { return !declared || g_.first_required_from(n, t.a) == n.n_properties; };
    auto open_key = [&] {
      if (declared) {
        if (t.a >= n.n_properties) return step::fail;
        t.state = o_key;
        t.b = 0;
        return step::ok;
      }
      t.state = o_colon;
      return push(s, n.first_property, s_in) ? step::ok : step::fail;  // any key: first_property is the key's string node
    };
    switch (t.state) {
      case o_start:
        if (c != '{') return step::fail;
        t.state = o_open;
        t.a = 0;
        return step::ok;
      case o_open:
        if (c == '"') return open_key();
        if (c == '}' && may_close()) return --s.depth, step::ok;
        return step::fail;
      case o_key: {
        // The smallest property at or after t.a (and not past the next required one) whose key
        // starts with the bytes read so far and continues with c. Keys end with '"', which no
        // key holds unescaped, so none is a prefix of another.
        const std::int32_t last = std::min(g_.first_required_from(n, t.a), n.n_properties - 1);
        const std::string& cur = key(n, t.a);
        const auto pos = std::size_t(t.b);
        for (std::int32_t p = t.a; p <= last; ++p) {
          const std::string& k = key(n, p);
          if (k.size() > pos && std::uint8_t(k[pos]) == c && (p == t.a || std::memcmp(k.data(), cur.data(), pos) == 0)) {
            t.a = p;
            t.b = std::int32_t(pos + 1);
            if (k.size() == pos + 1) t.state = o_colon;
            return step::ok;
          }
        }
        return step::fail;
      }
      case o_colon: {
        if (c != ':') return step::fail;
        t.state = o_after;
        std::int32_t value = n.items;
        if (declared) {
          value = g_.properties[std::size_t(n.first_property) + std::size_t(t.a)].value;
          ++t.a;
        }
        return push(s, value) ? step::ok : step::fail;
      }
      case o_after:
        if (c == ',' && (!declared || t.a < n.n_properties)) return t.state = o_comma, step::ok;
        if (c == '}' && may_close()) return --s.depth, step::ok;
        return step::fail;
      case o_comma:
        if (c == '"') return open_key();
        return step::fail;
    }
    return step::fail;
  }

  step array_byte(matcher_state& s, frame& t, const node& n, std::uint8_t c) const {
    switch (t.state) {
      case a_start:
        if (c != '[') return step::fail;
        t.state = a_open;
        t.a = 0;
        return step::ok;
      case a_open:
        if (c == ']') return n.min_items == 0 ? (--s.depth, step::ok) : step::fail;
        if (n.max_items == 0) return step::fail;
        [[fallthrough]];
      case a_comma:
        t.state = a_after;
        ++t.a;
        return push(s, n.items) ? step::redo : step::fail;
      case a_after:
        if (c == ',' && (n.max_items < 0 || t.a < n.max_items)) return t.state = a_comma, step::ok;
        if (c == ']' && t.a >= n.min_items) return --s.depth, step::ok;
        return step::fail;
    }
    return step::fail;
  }

  static bool string_byte(matcher_state& s, frame& t, std::uint8_t c) {
    switch (t.state) {
      case s_start:
        if (c != '"') return false;
        t.state = s_in;
        return true;
      case s_in:
        if (c == '"') {
          --s.depth;
          return true;
        }
        if (c == '\\') {
          t.state = s_escape;
          return true;
        }
        if (c < 0x20) return false;
        if (c < 0x80) return true;
        {
          // UTF-8 lead byte: how many continuation bytes, and the first one's range (io/utf8.hpp).
          const utf8_lead lead = utf8_lead_of(c);
          if (lead.len == 0) return false;
          t.a = std::int32_t(lead.len) - 1;
          t.lo = lead.lo;
          t.hi = lead.hi;
          t.state = s_utf8;
          return true;
        }
      case s_utf8:
        if (c < t.lo || c > t.hi) return false;
        t.lo = 0x80;
        t.hi = 0xbf;
        if (--t.a == 0) t.state = s_in;
        return true;
      case s_escape:
        if (c == 'u') {
          t.state = s_hex;
          t.a = 0;
          return true;
        }
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
          t.state = s_in;
          return true;
        }
        return false;
      case s_hex:
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
        if (++t.a == 4) t.state = s_in;
        return true;
    }
    return false;
  }

  step number_byte(matcher_state& s, frame& t, bool integer, std::uint8_t c) const {
    const bool digit = c >= '0' && c <= '9';
    auto take_digit = [&](std::uint8_t next) {
      if (t.a >= max_number_digits) return step::fail;
      ++t.a;
      t.state = next;
      return step::ok;
    };
    auto end = [&] {  // the number is over: the byte belongs to what encloses it
      if (!may_end(t)) return step::fail;
      --s.depth;
      return step::redo;
    };
    switch (t.state) {
      case n_start:
        if (c == '-') return t.state = n_minus, step::ok;
        [[fallthrough]];
      case n_minus:
        if (c == '0') return take_digit(n_zero);
        if (digit) return take_digit(n_int);
        return step::fail;
      case n_zero:
      case n_int:
        if (digit && t.state == n_int) return take_digit(n_int);
        if (!integer && c == '.') return t.state = n_dot, step::ok;
        if (!integer && (c == 'e' || c == 'E')) return t.state = n_e, step::ok;
        return end();
      case n_dot: return digit ? take_digit(n_frac) : step::fail;
      case n_frac:
        if (digit) return take_digit(n_frac);
        if (c == 'e' || c == 'E') return t.state = n_e, step::ok;
        return end();
      case n_e:
        if (c == '+' || c == '-') return t.state = n_esign, step::ok;
        [[fallthrough]];
      case n_esign: return digit ? take_digit(n_exp) : step::fail;
      case n_exp: return digit ? take_digit(n_exp) : end();
    }
    return step::fail;
  }

  step literal_byte(matcher_state& s, frame& t, const node& n, std::uint8_t c) const {
    const std::int32_t first = n.first_literal, end_lit = n.first_literal + n.n_literals;
    if (t.state == l_start) {
      t.state = l_in;
      t.a = first;
      t.b = 0;
    }
    // The smallest candidate that agrees with what was read and continues with c.
    const std::string& cur = g_.literals[std::size_t(t.a)];
    const auto pos = std::size_t(t.b);
    for (std::int32_t p = t.a; p < end_lit; ++p) {
      const std::string& l = g_.literals[std::size_t(p)];
      if (l.size() > pos && std::uint8_t(l[pos]) == c && (p == t.a || std::memcmp(l.data(), cur.data(), pos) == 0)) {
        t.a = p;
        t.b = std::int32_t(pos + 1);
        if (l.size() == pos + 1 && !longer_candidate(t, end_lit)) end_literal(s, t, n);  // nothing can follow: close now
        return step::ok;
      }
    }
    if (pos > 0 && cur.size() == pos) {  // a complete literal that another one extends: it ends here
      end_literal(s, t, n);
      return step::redo;
    }
    return step::fail;
  }

  void end_literal(matcher_state& s, frame& t, const node& n) const {
    if (n.first_continuation < 0) {
      --s.depth;
      return;
    }
    const std::int32_t next = g_.continuations[std::size_t(n.first_continuation + t.a - n.first_literal)];
    t = frame{};
    t.node = next;
    t.state = o_colon;  // the object's first key was the literal's end
    t.a = 0;
  }

  bool longer_candidate(const frame& t, std::int32_t end_lit) const {
    const std::string& cur = g_.literals[std::size_t(t.a)];
    for (std::int32_t p = t.a + 1; p < end_lit; ++p) {
      const std::string& l = g_.literals[std::size_t(p)];
      if (l.size() > cur.size() && l.compare(0, cur.size(), cur) == 0) return true;
    }
    return false;
  }

  const compiled_grammar& g_;
};

}  // namespace gemmaforge::grammar
