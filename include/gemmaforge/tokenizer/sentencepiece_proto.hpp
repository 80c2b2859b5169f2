#pragma once
// The subset of SentencePiece's ModelProto (sentencepiece_model.proto, proto2) that a tokenizer
// needs, with a writer and a reader of the protobuf wire format. No protobuf dependency: a GGUF
// file carries its vocabulary as metadata arrays, and we rebuild the serialized model from them
// for SentencePieceProcessor::LoadFromSerializedProto. The reader parses real tokenizer.model
// files (to learn piece types and normalizer flags) and our own output (round-trip tests); it is
// bounds-checked like the model readers, since tokenizer files are untrusted input too.
//
// Field numbers (sentencepiece_model.proto):
//   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec,
//                   5 denormalizer_spec
//   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
//   TrainerSpec     3 model_type, 4 vocab_size, 26 allow_whitespace_only_pieces, 35 byte_fallback,
//                   40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id, 45 unk_piece, 46 bos_piece,
//                   47 eos_piece, 48 pad_piece, 24 treat_whitespace_as_suffix
//   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix, 4 remove_extra_whitespaces,
//                   5 escape_whitespaces
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/core/error.hpp>

namespace gemmaforge::spm {

enum class piece_type : int { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };
enum class model_type : int { unigram = 1, bpe = 2, word = 3, character = 4 };

struct piece {
  std::string text;
  float score = 0.0f;
  piece_type type = piece_type::normal;
};

// Defaults are the proto2 defaults, so a parsed model that omits a field reads as SentencePiece
// itself would read it.
struct trainer_spec {
  model_type type = model_type::unigram;
  int vocab_size = 8000;
  bool byte_fallback = false;
  bool allow_whitespace_only_pieces = false;
  bool treat_whitespace_as_suffix = false;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_piece = "<unk>", bos_piece = "<s>", eos_piece = "</s>", pad_piece = "<pad>";
};

struct normalizer_spec {
  std::string name;
  std::string precompiled_charsmap;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct model_proto {
  std::vector<piece> pieces;
  trainer_spec trainer;
  normalizer_spec normalizer;
};

// ------------------------------------------------------------------------------------ writer
namespace detail {

enum wire : std::uint32_t { wire_varint = 0, wire_fixed64 = 1, wire_bytes = 2, wire_fixed32 = 5 };

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += char(std::uint8_t(v) | 0x80);
    v >>= 7;
  }
  out += char(std::uint8_t(v));
}
inline void put_tag(std::string& out, std::uint32_t field, wire w) { put_varint(out, (std::uint64_t(field) << 3) | w); }
// int32 fields encode negative values as 10-byte two's-complement varints (protobuf rule).
inline void put_int32(std::string& out, std::uint32_t field, std::int32_t v) {
  put_tag(out, field, wire_varint);
  put_varint(out, std::uint64_t(std::int64_t(v)));
}
inline void put_bool(std::string& out, std::uint32_t field, bool v) {
  put_tag(out, field, wire_varint);
  put_varint(out, v ? 1 : 0);
}
inline void put_bytes(std::string& out, std::uint32_t field, std::string_view v) {
  put_tag(out, field, wire_bytes);
  put_varint(out, v.size());
  out.append(v);
}
inline void put_float(std::string& out, std::uint32_t field, float v) {
  put_tag(out, field, wire_fixed32);
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (checked in io/byte_reader.hpp)
  out.append(b, 4);
}

}  // namespace detail

inline std::string serialize(const model_proto& m) {
  using namespace detail;
  std::string out;
  std::string sub;
  for (const piece& p : m.pieces) {
    sub.clear();
    put_bytes(sub, 1, p.text);
    put_float(sub, 2, p.score);
    put_int32(sub, 3, static_cast<std::int32_t>(p.type));
    put_bytes(out, 1, sub);
  }
  const trainer_spec& t = m.trainer;
  sub.clear();
  put_int32(sub, 3, static_cast<std::int32_t>(t.type));
  put_int32(sub, 4, t.vocab_size);
  put_bool(sub, 24, t.treat_whitespace_as_suffix);
  put_bool(sub, 26, t.allow_whitespace_only_pieces);
  put_bool(sub, 35, t.byte_fallback);
  put_int32(sub, 40, t.unk_id);
  put_int32(sub, 41, t.bos_id);
  put_int32(sub, 42, t.eos_id);
  put_int32(sub, 43, t.pad_id);
  put_bytes(sub, 45, t.unk_piece);
  put_bytes(sub, 46, t.bos_piece);
  put_bytes(sub, 47, t.eos_piece);
  put_bytes(sub, 48, t.pad_piece);
  put_bytes(out, 2, sub);
  const normalizer_spec& n = m.normalizer;
  sub.clear();
  put_bytes(sub, 1, n.name);
  if (!n.precompiled_charsmap.empty()) put_bytes(sub, 2, n.precompiled_charsmap);
  put_bool(sub, 3, n.add_dummy_prefix);
  put_bool(sub, 4, n.remove_extra_whitespaces);
  put_bool(sub, 5, n.escape_whitespaces);
  put_bytes(out, 3, sub);
  return out;
}

// ------------------------------------------------------------------------------------ reader
namespace detail {

class wire_reader {
 public:
  wire_reader(std::string_view bytes, const std::string& file) : b_(bytes), file_(file) {}
  bool done() const { return pos_ >= b_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw error(errc::format, file_ + ": corrupt SentencePiece model: " + what + " at byte " + std::to_string(pos_));
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) fail("truncated varint");
      const auto byte = static_cast<std::uint8_t>(b_[pos_++]);
      v |= std::uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  std::string_view bytes() {
    const std::uint64_t n = varint();
    if (n > b_.size() - pos_) fail("length " + std::to_string(n) + " runs past the end");
    const std::string_view v = b_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  float fixed32_float() {
    if (b_.size() - pos_ < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, b_.data() + pos_, 4);
    pos_ += 4;
    return f;
  }
  void skip(std::uint32_t w) {
    switch (w) {
      case wire_varint: (void)varint(); break;
      case wire_fixed64:
        if (b_.size() - pos_ < 8) fail("truncated fixed64");
        pos_ += 8;
        break;
      case wire_bytes: (void)bytes(); break;
      case wire_fixed32:
        if (b_.size() - pos_ < 4) fail("truncated fixed32");
        pos_ += 4;
        break;
      default: fail("unsupported wire type " + std::to_string(w));
    }
  }
  // Next (field, wire type); field 0 is invalid in protobuf.
  std::pair<std::uint32_t, std::uint32_t> tag() {
    const std::uint64_t t = varint();
    const std::uint64_t field = t >> 3;
    if (field == 0 || field > 536870911u) fail("invalid field number");
    return {static_cast<std::uint32_t>(field), static_cast<std::uint32_t>(t & 7)};
  }
  void expect(std::uint32_t got, std::uint32_t want, const char* field) {
    if (got != want) fail(std::string("field ") + field + " has wire type " + std::to_string(got));
  }

 private:
  std::string_view b_;
  const std::string& file_;
  std::size_t pos_ = 0;
};

inline std::int32_t as_int32(std::uint64_t v) { return static_cast<std::int32_t>(static_cast<std::uint32_t>(v)); }

}  // namespace detail

inline model_proto parse(std::string_view bytes, const std::string& file = "<memory>") {
  using namespace detail;
  model_proto m;
  wire_reader r(bytes, file);
  while (!r.done()) {
    const auto [field, w] = r.tag();
    if (field == 1) {
      r.expect(w, wire_bytes, "pieces");
      wire_reader pr(r.bytes(), file);
      piece p;
      while (!pr.done()) {
        const auto [f, pw] = pr.tag();
        if (f == 1) { pr.expect(pw, wire_bytes, "piece"); p.text = std::string(pr.bytes()); }
        else if (f == 2) { pr.expect(pw, wire_fixed32, "score"); p.score = pr.fixed32_float(); }
        else if (f == 3) {
          pr.expect(pw, wire_varint, "type");
          const std::int32_t t = as_int32(pr.varint());
          if (t < 1 || t > 6) pr.fail("unknown piece type " + std::to_string(t));
          p.type = static_cast<piece_type>(t);
        } else pr.skip(pw);
      }
      m.pieces.push_back(std::move(p));
    } else if (field == 2) {
      r.expect(w, wire_bytes, "trainer_spec");
      wire_reader tr(r.bytes(), file);
      trainer_spec& t = m.trainer;
      while (!tr.done()) {
        const auto [f, tw] = tr.tag();
        auto int_field = [&, tw = tw](const char* name) { tr.expect(tw, wire_varint, name); return as_int32(tr.varint()); };
        auto str_field = [&, tw = tw](const char* name) { tr.expect(tw, wire_bytes, name); return std::string(tr.bytes()); };
        switch (f) {
          case 3: t.type = static_cast<model_type>(int_field("model_type")); break;
          case 4: t.vocab_size = int_field("vocab_size"); break;
          case 24: t.treat_whitespace_as_suffix = int_field("treat_whitespace_as_suffix") != 0; break;
          case 26: t.allow_whitespace_only_pieces = int_field("allow_whitespace_only_pieces") != 0; break;
          case 35: t.byte_fallback = int_field("byte_fallback") != 0; break;
          case 40: t.unk_id = int_field("unk_id"); break;
          case 41: t.bos_id = int_field("bos_id"); break;
          case 42: t.eos_id = int_field("eos_id"); break;
          case 43: t.pad_id = int_field("pad_id"); break;
          case 45: t.unk_piece = str_field("unk_piece"); break;
          case 46: t.bos_piece = str_field("bos_piece"); break;
          case 47: t.eos_piece = str_field("eos_piece"); break;
          case 48: t.pad_piece = str_field("pad_piece"); break;
          default: tr.skip(tw);
        }
      }
    } else if (field == 3) {
      r.expect(w, wire_bytes, "normalizer_spec");
      wire_reader nr(r.bytes(), file);
      normalizer_spec& n = m.normalizer;
      while (!nr.done()) {
        const auto [f, nw] = nr.tag();
        if (f == 1) { nr.expect(nw, wire_bytes, "name"); n.name = std::string(nr.bytes()); }
        else if (f == 2) { nr.expect(nw, wire_bytes, "precompiled_charsmap"); n.precompiled_charsmap = std::string(nr.bytes()); }
        else if (f == 3) { nr.expect(nw, wire_varint, "add_dummy_prefix"); n.add_dummy_prefix = nr.varint() != 0; }
        else if (f == 4) { nr.expect(nw, wire_varint, "remove_extra_whitespaces"); n.remove_extra_whitespaces = nr.varint() != 0; }
        else if (f == 5) { nr.expect(nw, wire_varint, "escape_whitespaces"); n.escape_whitespaces = nr.varint() != 0; }
        else nr.skip(nw);
      }
    } else {
      r.skip(w);
    }
  }
  return m;
}

}  // namespace gemmaforge::spm
