#pragma once
// framed_matcher: a JSON value between fixed text, as a tool call is written (tool_calls in
// docs/serving.md): an optional free-text phase that ends at an opener, the opener itself, the
// JSON value (matcher.hpp), then a closer, then nothing.
//
//   free (optional)  any bytes, until they end with `opener` (then straight to json)
//   prefix           exactly `opener` (when there is no free phase)
//   json             the compiled grammar's value
//   suffix           exactly `closer`
//
// With neither free text nor opener/closer this is the plain matcher (response_format).
#include <cstdint>
#include <string>
#include <string_view>

#include <gemmaforge/grammar/matcher.hpp>

namespace gemmaforge::grammar {

struct framed_state {
  std::uint8_t phase = 0;
  std::uint32_t pos = 0;  // bytes of the opener/closer matched
  matcher_state m;
};

inline void copy_state(framed_state& dst, const framed_state& src) {
  dst.phase = src.phase;
  dst.pos = src.pos;
  copy_state(dst.m, src.m);
}

class framed_matcher {
 public:
  using state_type = framed_state;
  enum phase : std::uint8_t { free_text = 0, prefix = 1, json = 2, suffix = 3, done = 4 };

  explicit framed_matcher(const compiled_grammar& g, std::string opener = {}, std::string closer = {}, bool free_first = false)
      : m_(g), opener_(std::move(opener)), closer_(std::move(closer)), free_first_(free_first && !opener_.empty()) {}

  framed_state start() const {
    framed_state s;
    s.phase = free_first_ ? free_text : opener_.empty() ? json : prefix;
    s.m = m_.start();
    return s;
  }

  bool complete(const framed_state& s) const { return s.phase == done; }
  bool unconstrained(const framed_state& s) const { return s.phase == free_text; }
  bool in_plain_string(const framed_state& s) const { return s.phase == json && m_.in_plain_string(s.m); }
  // The output may end here: in free text (no call made), or after the closer.
  bool accepting(const framed_state& s) const {
    if (s.phase == free_text || s.phase == done) return true;
    return s.phase == json && closer_.empty() && m_.accepting(s.m);
  }
  // The JSON value has begun (a tool call is being written).
  bool in_call(const framed_state& s) const { return s.phase >= json; }

  bool feed(framed_state& s, std::uint8_t c) const {
    switch (s.phase) {
      case free_text: {
        // Naive matching is right here: after a mismatch the opener ("```json") can only
        // restart at a backtick, and a run of backticks keeps the last three.
        if (s.pos < opener_.size() && std::uint8_t(opener_[s.pos]) == c) ++s.pos;
        else if (c == '`' && s.pos == 3 && opener_.compare(0, 3, "```") == 0) s.pos = 3;
        else s.pos = std::uint8_t(opener_[0]) == c ? 1 : 0;
        if (s.pos == opener_.size()) {
          s.phase = json;
          s.pos = 0;
        }
        return true;
      }
      case prefix:
        if (std::uint8_t(opener_[s.pos]) != c) return false;
        if (++s.pos == opener_.size()) {
          s.phase = json;
          s.pos = 0;
        }
        return true;
      case json: {
        if (!matcher::complete(s.m)) {
          if (!(m_.accepting(s.m) && !closer_.empty())) {
            if (!m_.feed(s.m, c)) return false;
            if (matcher::complete(s.m)) end_json(s);
            return true;
          }
          // A root value that may end or grow (a number): try growing, else it ended.
          if (m_.feed(s.m, c)) {
            if (matcher::complete(s.m)) end_json(s);
            return true;
          }
        }
        end_json(s);
        if (s.phase != suffix) return false;
        [[fallthrough]];
      }
      case suffix:
        if (s.pos >= closer_.size() || std::uint8_t(closer_[s.pos]) != c) return false;
        if (++s.pos == closer_.size()) s.phase = done;
        return true;
      default: return false;
    }
  }

  bool feed_all(framed_state& s, std::string_view bytes) const {
    for (char c : bytes)
      if (!feed(s, std::uint8_t(c))) return false;
    return true;
  }

 private:
  void end_json(framed_state& s) const {
    s.m.depth = 0;
    s.pos = 0;
    s.phase = closer_.empty() ? done : suffix;
  }

  matcher m_;
  std::string opener_, closer_;
  bool free_first_ = false;
};

}  // namespace gemmaforge::grammar
