#pragma once
// tokenizer: SentencePiece encoding (the sentencepiece library) + our own table-driven decoding.
//
// Sources: a GGUF file's embedded vocabulary (tokenizer.ggml.*, rebuilt into a serialized
// SentencePiece model, see from_gguf), a tokenizer.model file, or an HF checkpoint directory
// holding one.
//
// Behaviour, matching the reference (HF transformers' Gemma tokenizer):
//  - encode() splits the text at special tokens first (control pieces such as <start_of_turn>,
//    leftmost-longest, like HF's added-token matching), then SentencePiece-encodes the pieces in
//    between. parse_special = false encodes special-token text as plain text (for user content).
//  - Text that is not valid UTF-8 is repaired first: each invalid maximal subpart becomes U+FFFD
//    (what SentencePiece's own normalizer would do), so encode() never fails on bytes.
//  - BOS is prepended when the file says so (tokenizer.ggml.add_bos_token), unless overridden.
//  - decode() is ours: a per-id byte table (U+2581 -> space, <0xNN> -> the byte, special tokens
//    skipped or rendered), run through the streaming detokenizer (stream_detokenizer.hpp), so
//    stream() and decode() produce the same text by construction. The engine's stream of a
//    continuation (runtime/text_stream.hpp) runs the same byte assembly (utf8_stream) and differs
//    only in keeping the dummy-prefix space: tests/unit/tokenizer_test.cpp checks both.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <sentencepiece_processor.h>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/io/gguf.hpp>
#include <gemmaforge/io/mmap_file.hpp>
#include <gemmaforge/io/model_file.hpp>
#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/tokenizer/sentencepiece_proto.hpp>

namespace gemmaforge {

struct encode_options {
  std::optional<bool> add_bos;  // nullopt: the file's rule
  bool parse_special = true;    // recognise special-token text such as "<start_of_turn>"
  // 0: no bound. Otherwise encoding stops once the ids exceed max_tokens: the result then holds
  // max_tokens + 1 ids (enough to say "too long"), and the work done is bounded by the prefix
  // that produced them, not by the whole text (a server's guard against huge prompts).
  std::size_t max_tokens = 0;
};

struct decode_options {
  bool skip_special = true;  // control/unknown tokens produce no text (else their piece text)
};

class stream_detokenizer;

class tokenizer {
 public:
  // ----------------------------------------------------------------------------- loading
  // From a GGUF file's tokenizer.ggml.* metadata. Supports tokenizer.ggml.model "llama"
  // (SentencePiece), which every Gemma GGUF uses; Gemma's model is BPE with byte fallback.
  static tokenizer from_gguf(const gguf_file& g) {
    gguf_vocabulary v = vocabulary_from_gguf(g);
    return from_proto(std::move(v.proto), g.name(), v.add_bos, v.bos, v.eos, v.pad);
  }

  // The SentencePiece model a GGUF vocabulary describes, and the special ids it names.
  struct gguf_vocabulary {
    spm::model_proto proto;
    bool add_bos = true;
    int bos = -1, eos = -1, pad = -1;
  };
  static gguf_vocabulary vocabulary_from_gguf(const gguf_file& g) {
    const std::string& file = g.name();
    auto fail = [&](const std::string& what) -> void { throw error(errc::format, file + ": tokenizer: " + what); };
    const std::string_view kind = g.get_string("tokenizer.ggml.model");
    if (kind != "llama")
      fail("tokenizer.ggml.model is " + quote_for_message(kind) + "; only SentencePiece vocabularies (\"llama\") are supported");
    const auto tokens = g.get_array<std::string_view>("tokenizer.ggml.tokens");
    const std::size_t n = tokens.size();
    if (n == 0 || n > (std::size_t(1) << 24)) fail("vocabulary of " + std::to_string(n) + " tokens");
    std::vector<float> scores(n, 0.0f);
    if (g.has("tokenizer.ggml.scores")) {
      scores = g.get_array<float>("tokenizer.ggml.scores");  // checks finiteness
      if (scores.size() != n) fail(std::to_string(scores.size()) + " scores for " + std::to_string(n) + " tokens");
    }
    std::vector<std::int32_t> types(n, 1);
    if (g.has("tokenizer.ggml.token_type")) {
      types = g.get_array<std::int32_t>("tokenizer.ggml.token_type");
      if (types.size() != n) fail(std::to_string(types.size()) + " token types for " + std::to_string(n) + " tokens");
    }
    auto id_of = [&](const char* key, std::optional<std::uint32_t> fallback) -> int {
      const auto v = g.has(key) ? std::optional(g.get_u32(key)) : fallback;
      if (!v) return -1;
      if (*v >= n) fail(std::string(key) + " = " + std::to_string(*v) + " is outside the vocabulary of " + std::to_string(n));
      return int(*v);
    };
    const int unk = id_of("tokenizer.ggml.unknown_token_id", std::nullopt);
    const int bos = id_of("tokenizer.ggml.bos_token_id", std::nullopt);
    const int eos = id_of("tokenizer.ggml.eos_token_id", std::nullopt);
    const int pad = id_of("tokenizer.ggml.padding_token_id", std::nullopt);
    const std::string arch(g.find_string("general.architecture").value_or(""));
    const bool gemma = arch.rfind("gemma", 0) == 0;

    spm::model_proto m;
    m.pieces.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      spm::piece p;
      p.score = scores[i];
      switch (types[i]) {
        case 1: p.type = spm::piece_type::normal; break;
        case 2: p.type = spm::piece_type::unknown; break;
        case 3: p.type = spm::piece_type::control; break;
        case 4: p.type = spm::piece_type::user_defined; break;
        case 5: p.type = spm::piece_type::unused; break;
        case 6: p.type = spm::piece_type::byte; break;
        default: fail("token " + std::to_string(i) + " has unknown type " + std::to_string(types[i]));
      }
      // SentencePiece needs exactly one UNKNOWN piece, the one trainer_spec.unk_id names; GGUF
      // files mark <unk> as control (Gemma) or unknown.
      if (int(i) == unk) p.type = spm::piece_type::unknown;
      else if (p.type == spm::piece_type::unknown) p.type = spm::piece_type::control;
      // GGUF writes whitespace-run pieces with real spaces ("  "); SentencePiece matches pieces
      // against text whose spaces are already U+2581, so spell them that way (HF's GGUF
      // converter does the same for Gemma).
      if (p.type == spm::piece_type::byte || p.type == spm::piece_type::control) p.text = std::string(tokens[i]);
      else p.text = replace_all(tokens[i], " ", "\xE2\x96\x81");
      if (gemma) {
        // Follow the reference (HF transformers' GGUF Gemma tokenizer) in two points where it
        // departs from a plain SentencePiece reading of the file:
        //  - merge priority is the order of the vocabulary (score -id); Gemma GGUF scores are
        //    not guaranteed to follow it;
        //  - whitespace-run pieces are ordinary BPE pieces, not user-defined atoms. The two only
        //    differ on runs of more than 31 spaces (40 spaces: 16 + 24 here and in HF; 31 + 9
        //    with user-defined atoms, as PyPI sentencepiece on the same vocabulary does).
        p.score = -float(i);
        if (p.type == spm::piece_type::user_defined && tokens[i].find_first_not_of(' ') == std::string_view::npos)
          p.type = spm::piece_type::normal;
      }
      m.pieces.push_back(std::move(p));
    }
    if (unk < 0) {
      // Every SentencePiece model needs an unknown piece; GGUF files from llama.cpp name it.
      auto it = std::find_if(m.pieces.begin(), m.pieces.end(), [](const spm::piece& p) { return p.text == "<unk>"; });
      if (it == m.pieces.end()) fail("no tokenizer.ggml.unknown_token_id and no <unk> token");
      it->type = spm::piece_type::unknown;
    }
    const int unk_id = unk >= 0 ? unk : int(std::find_if(m.pieces.begin(), m.pieces.end(), [](const spm::piece& p) {
                                                return p.type == spm::piece_type::unknown;
                                              }) - m.pieces.begin());
    spm::trainer_spec& t = m.trainer;
    t.type = spm::model_type::bpe;  // Gemma's SentencePiece model is BPE (HF rebuilds it as BPE merges)
    t.vocab_size = int(n);
    t.byte_fallback = std::any_of(m.pieces.begin(), m.pieces.end(), [](const spm::piece& p) { return p.type == spm::piece_type::byte; });
    t.allow_whitespace_only_pieces = true;
    t.unk_id = unk_id;
    t.unk_piece = m.pieces[std::size_t(unk_id)].text;
    // SentencePiece looks special ids up by piece text and requires them to be control pieces;
    // an id that is not one is simply left undefined (-1) there, we keep our own copy below.
    auto special = [&](int id, std::string& piece_out, int& id_out) {
      if (id >= 0 && m.pieces[std::size_t(id)].type == spm::piece_type::control) {
        piece_out = m.pieces[std::size_t(id)].text;
        id_out = id;
      } else {
        piece_out = "<gemmaforge-undefined>";
        id_out = -1;
      }
    };
    special(bos, t.bos_piece, t.bos_id);
    special(eos, t.eos_piece, t.eos_id);
    special(pad, t.pad_piece, t.pad_id);
    spm::normalizer_spec& ns = m.normalizer;
    ns.name = "identity";
    // No dummy prefix for Gemma (its vocabulary was trained without one; older Gemma GGUFs lack
    // the key, and llama.cpp's default of true was a known bug for them).
    ns.add_dummy_prefix = g.find_bool("tokenizer.ggml.add_space_prefix").value_or(!gemma);
    ns.remove_extra_whitespaces = false;  // Gemma keeps whitespace runs (it has pieces for them)
    ns.escape_whitespaces = true;

    const bool add_bos = g.find_bool("tokenizer.ggml.add_bos_token").value_or(true);
    return {std::move(m), add_bos, bos, eos, pad};
  }

  // A tokenizer.model file (HF checkpoints ship one).
  static tokenizer from_sentencepiece_file(const std::filesystem::path& path) {
    const mapped_file f = mapped_file::open(path);
    const std::string_view bytes(reinterpret_cast<const char*>(f.data()), f.size());
    spm::model_proto m = spm::parse(bytes, f.path());
    const int bos = m.trainer.bos_id, eos = m.trainer.eos_id, pad = m.trainer.pad_id;
    return from_proto(std::move(m), f.path(), /*add_bos=*/true, bos, eos, pad);
  }

  // A GGUF file, a tokenizer.model file, or a directory holding tokenizer.model.
  static tokenizer load(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      const auto model = path / "tokenizer.model";
      if (!std::filesystem::exists(model, ec)) throw error(errc::io, path.string() + ": no tokenizer.model in this directory");
      return from_sentencepiece_file(model);
    }
    if (path.extension() == ".model") return from_sentencepiece_file(path);
    return from_gguf(gguf_file::open(path));
  }

  // Validate and load a model; special ids are given separately because SentencePiece only knows
  // them when they are control pieces.
  static tokenizer from_proto(spm::model_proto m, const std::string& name, bool add_bos, int bos, int eos, int pad) {
    tokenizer tk;
    tk.name_ = name;
    tk.validate(m);
    tk.sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto st = tk.sp_->LoadFromSerializedProto(spm::serialize(m));
    if (!st.ok()) throw error(errc::format, name + ": SentencePiece rejected the tokenizer model: " + st.ToString());
    tk.add_bos_ = add_bos;
    tk.bos_ = bos;
    tk.eos_ = eos;
    tk.pad_ = pad;
    tk.unk_ = m.trainer.unk_id;
    tk.strip_leading_space_ = m.normalizer.add_dummy_prefix;
    tk.build_tables(std::move(m));
    return tk;
  }

  tokenizer(tokenizer&&) noexcept = default;
  tokenizer& operator=(tokenizer&&) noexcept = default;

  // ------------------------------------------------------------------------------ queries
  const std::string& name() const { return name_; }
  int vocab_size() const { return int(pieces_.size()); }
  std::string_view piece(int id) const { return pieces_.at(check_id(id)); }
  spm::piece_type type(int id) const { return types_.at(check_id(id)); }
  bool is_special(int id) const {
    const auto t = type(id);
    return t == spm::piece_type::control || t == spm::piece_type::unknown;
  }
  // -1 when absent.
  int piece_to_id(std::string_view p) const {
    auto it = piece_ids_.find(p);
    return it == piece_ids_.end() ? -1 : it->second;
  }
  int bos_id() const { return bos_; }
  int eos_id() const { return eos_; }
  int pad_id() const { return pad_; }
  int unk_id() const { return unk_; }
  int start_of_turn_id() const { return piece_to_id("<start_of_turn>"); }
  int end_of_turn_id() const { return piece_to_id("<end_of_turn>"); }
  bool add_bos() const { return add_bos_; }
  // Tokens that end a generation: EOS and, for chat models, <end_of_turn>.
  bool is_end_of_generation(int id) const { return id == eos_ || (id >= 0 && id == end_of_turn_id()); }
  // The same ids as a list: the engine's default stop ids (engine_config::stop_ids).
  std::vector<std::int32_t> end_of_generation_ids() const {
    std::vector<std::int32_t> ids{eos_};
    if (const int eot = end_of_turn_id(); eot >= 0) ids.push_back(eot);
    return ids;
  }
  // Bytes a token decodes to (possibly part of a UTF-8 character).
  std::string_view token_bytes(int id, bool skip_special = true) const {
    check_id(id);
    if (skip_special && is_special(id)) return {};
    return bytes_[std::size_t(id)];
  }
  bool strips_leading_space() const { return strip_leading_space_; }

  // ------------------------------------------------------------------------------ encoding
  std::vector<int> encode(std::string_view text, const encode_options& o = {}) const {
    return o.max_tokens > 0 ? encode_bounded(text, o) : encode_all(text, o);
  }

  // Ids must be in [0, vocab_size): an out-of-range id is errc::invalid_argument.
  std::string decode(std::span<const int> ids, const decode_options& o = {}) const;
  stream_detokenizer stream(const decode_options& o = {}) const;

 private:
  tokenizer() = default;

  // Bounded encoding: encode growing prefixes of the text (cut at a character boundary, doubling
  // from 4 bytes per allowed token) until the whole text is read or a prefix already yields more
  // than max_tokens + 1 ids. A token covers at least one byte, so the first window can hold the
  // answer; a text that fits is encoded exactly as encode_all would. A prefix decides "too long"
  // only past limit + 16 ids: the cut may split a word or a special token's text into more pieces
  // than the whole text has there. Work and memory stay proportional to the window that decided,
  // never to the text.
  std::vector<int> encode_bounded(std::string_view text, const encode_options& o) const {
    const std::size_t limit = o.max_tokens + 1;
    encode_options all = o;
    all.max_tokens = 0;
    std::size_t window = std::max<std::size_t>(64, limit * 4);
    for (;;) {
      if (window >= text.size()) {
        std::vector<int> ids = encode_all(text, all);
        if (ids.size() > limit) ids.resize(limit);
        return ids;
      }
      std::size_t cut = window;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
      std::vector<int> ids = encode_all(text.substr(0, cut), all);
      if (ids.size() > limit + 16) {
        ids.resize(limit);
        return ids;
      }
      window = window > text.size() / 2 ? text.size() : window * 2;
    }
  }

  std::vector<int> encode_all(std::string_view text, const encode_options& o) const {
    std::vector<int> ids;
    if (o.add_bos.value_or(add_bos_) && bos_ >= 0) ids.push_back(bos_);
    const std::string repaired = is_valid_utf8(text) ? std::string() : repair_utf8(text);
    const std::string_view t = repaired.empty() ? text : std::string_view(repaired);
    std::size_t start = 0;
    if (o.parse_special && max_special_len_ > 0) {
      std::size_t i = 0;
      while (i < t.size()) {
        const int sp = special_first_byte_[static_cast<unsigned char>(t[i])] ? match_special(t, i) : -1;
        if (sp < 0) {
          ++i;
          continue;
        }
        encode_plain(t.substr(start, i - start), ids);
        ids.push_back(sp);
        i += pieces_[std::size_t(sp)].size();
        start = i;
      }
    }
    encode_plain(t.substr(start), ids);
    return ids;
  }

  static std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
    std::string out;
    std::size_t i = 0;
    while (true) {
      const std::size_t j = s.find(from, i);
      if (j == std::string_view::npos) break;
      out.append(s.substr(i, j - i)).append(to);
      i = j + from.size();
    }
    return out.append(s.substr(i));
  }

  std::size_t check_id(int id) const {
    if (id < 0 || std::size_t(id) >= pieces_.size())
      throw error(errc::invalid_argument, "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                              std::to_string(pieces_.size()) + ")");
    return std::size_t(id);
  }

  // The checks SentencePiece would fail on (with a less helpful message), done up front.
  void validate(const spm::model_proto& m) const {
    auto fail = [&](const std::string& what) -> void { throw error(errc::format, name_ + ": tokenizer: " + what); };
    if (m.pieces.empty()) fail("no pieces");
    std::unordered_map<std::string_view, std::size_t> seen;
    int unknowns = 0;
    for (std::size_t i = 0; i < m.pieces.size(); ++i) {
      const spm::piece& p = m.pieces[i];
      if (p.text.empty()) fail("token " + std::to_string(i) + " is empty");
      if (!is_valid_utf8(p.text)) fail("token " + std::to_string(i) + " is not valid UTF-8: " + quote_for_message(p.text));
      if (!std::isfinite(p.score)) fail("token " + std::to_string(i) + " has a non-finite score");
      if (!seen.emplace(p.text, i).second)
        fail("token " + std::to_string(i) + " " + quote_for_message(p.text) + " duplicates token " + std::to_string(seen[p.text]));
      if (p.type == spm::piece_type::unknown) ++unknowns;
      if (p.type == spm::piece_type::byte && !parse_byte_piece(p.text))
        fail("byte token " + std::to_string(i) + " " + quote_for_message(p.text) + " is not of the form <0xNN>");
    }
    if (unknowns != 1) fail(std::to_string(unknowns) + " unknown-type tokens (exactly one is required)");
    const int unk = m.trainer.unk_id;
    if (unk < 0 || std::size_t(unk) >= m.pieces.size() || m.pieces[std::size_t(unk)].type != spm::piece_type::unknown)
      fail("unk_id " + std::to_string(unk) + " does not name the unknown token");
    if (m.trainer.type != spm::model_type::bpe && m.trainer.type != spm::model_type::unigram)
      fail("SentencePiece model type " + std::to_string(int(m.trainer.type)) + " is not supported (BPE or unigram)");
    if (!m.normalizer.precompiled_charsmap.empty() && m.normalizer.name == "identity")
      fail("identity normalizer with a character map");
  }

  static std::optional<unsigned char> parse_byte_piece(std::string_view p) {
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(p[3]), lo = hex(p[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<unsigned char>(hi * 16 + lo);
  }

  void build_tables(spm::model_proto m) {
    const std::size_t n = m.pieces.size();
    pieces_.resize(n);
    bytes_.resize(n);
    types_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      spm::piece& p = m.pieces[i];
      types_[i] = p.type;
      if (p.type == spm::piece_type::byte) bytes_[i] = std::string(1, char(*parse_byte_piece(p.text)));
      else if (p.type == spm::piece_type::control || p.type == spm::piece_type::unknown) bytes_[i] = p.text;
      else bytes_[i] = replace_all(p.text, "\xE2\x96\x81", " ");
      pieces_[i] = std::move(p.text);
    }
    for (std::size_t i = 0; i < n; ++i) {
      piece_ids_.emplace(pieces_[i], int(i));
      if (types_[i] == spm::piece_type::control || types_[i] == spm::piece_type::unknown) {
        specials_.emplace(pieces_[i], int(i));
        special_first_byte_[static_cast<unsigned char>(pieces_[i][0])] = true;
        max_special_len_ = std::max(max_special_len_, pieces_[i].size());
      }
    }
  }

  // The longest special token starting at t[i], or -1.
  int match_special(std::string_view t, std::size_t i) const {
    const std::size_t max = std::min(max_special_len_, t.size() - i);
    for (std::size_t len = max; len > 0; --len) {
      auto it = specials_.find(t.substr(i, len));
      if (it != specials_.end()) return it->second;
    }
    return -1;
  }

  void encode_plain(std::string_view text, std::vector<int>& out) const {
    if (text.empty()) return;
    std::vector<int> ids;
    const auto st = sp_->Encode(text, &ids);
    if (!st.ok()) throw error(errc::internal, name_ + ": SentencePiece failed to encode: " + st.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  std::string name_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<std::string> pieces_;
  std::vector<std::string> bytes_;
  std::vector<spm::piece_type> types_;
  std::unordered_map<std::string_view, int> piece_ids_;  // views into pieces_ (stable: never resized after)
  std::unordered_map<std::string_view, int> specials_;
  std::array<bool, 256> special_first_byte_{};
  std::size_t max_special_len_ = 0;
  bool add_bos_ = true;
  bool strip_leading_space_ = false;
  int bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
};

// The tokenizer that belongs to an opened checkpoint: a GGUF file's embedded vocabulary, or the
// tokenizer.model in an HF checkpoint's directory.
inline tokenizer load_tokenizer(const model_file& f) {
  if (const gguf_file* g = f.gguf()) return tokenizer::from_gguf(*g);
#if GF_IO_HAVE_SAFETENSORS
  if (const safetensors_checkpoint* st = f.safetensors()) return tokenizer::load(st->dir());
#endif
  throw error(errc::invalid_argument, f.path() + ": no tokenizer source");
}

}  // namespace gemmaforge

#include <gemmaforge/tokenizer/stream_detokenizer.hpp>
