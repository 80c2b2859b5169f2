// Tokenizer: the SentencePiece proto writer/reader round trip, the library accepting our
// serialized model, encoding with special tokens and byte fallback, invalid UTF-8, the streaming
// detokenizer, chat templates; and the real Gemma 3 270M vocabulary against the reference ids
// recorded by tools/make_tokenizer_fixture.py ([model]).
#include <catch2/catch.hpp>

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/tokenizer/chat_template.hpp>
#include <gemmaforge/tokenizer/sentencepiece_proto.hpp>

#include <algorithm>
#include <chrono>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "io_test_support.hpp"

namespace gf = gemmaforge;
namespace spm = gemmaforge::spm;

// ------------------------------------------------------------------------ proto (no library)
TEST_CASE("sentencepiece proto: serialize then parse gives the same model", "[cpu][tokenizer]") {
  spm::model_proto m;
  m.pieces = {{"<unk>", 0.0f, spm::piece_type::unknown}, {"<s>", -1.5f, spm::piece_type::control},
              {"\xE2\x96\x81hello", -3.25f, spm::piece_type::normal}, {"<0x41>", 0.0f, spm::piece_type::byte},
              {"  ", -1000.0f, spm::piece_type::user_defined}, {"<unused0>", 0.0f, spm::piece_type::unused}};
  m.trainer.type = spm::model_type::bpe;
  m.trainer.vocab_size = 6;
  m.trainer.byte_fallback = true;
  m.trainer.allow_whitespace_only_pieces = true;
  m.trainer.unk_id = 0;
  m.trainer.bos_id = 1;
  m.trainer.eos_id = -1;
  m.trainer.pad_id = -1;
  m.trainer.bos_piece = "<s>";
  m.normalizer.name = "identity";
  m.normalizer.add_dummy_prefix = false;
  m.normalizer.remove_extra_whitespaces = false;
  const std::string bytes = spm::serialize(m);
  const spm::model_proto r = spm::parse(bytes);
  REQUIRE(r.pieces.size() == m.pieces.size());
  for (std::size_t i = 0; i < m.pieces.size(); ++i) {
    CHECK(r.pieces[i].text == m.pieces[i].text);
    CHECK(r.pieces[i].score == m.pieces[i].score);
    CHECK(r.pieces[i].type == m.pieces[i].type);
  }
  CHECK(r.trainer.type == spm::model_type::bpe);
  CHECK(r.trainer.vocab_size == 6);
  CHECK(r.trainer.byte_fallback);
  CHECK(r.trainer.allow_whitespace_only_pieces);
  CHECK(r.trainer.eos_id == -1);  // negative int32: a 10-byte varint
  CHECK(r.trainer.pad_id == -1);
  CHECK(r.trainer.bos_piece == "<s>");
  CHECK(r.normalizer.name == "identity");
  CHECK(!r.normalizer.add_dummy_prefix);
  CHECK(!r.normalizer.remove_extra_whitespaces);
  CHECK(r.normalizer.escape_whitespaces);
  CHECK(spm::serialize(r) == bytes);

  // Defaults of absent fields are proto2's.
  const spm::model_proto empty = spm::parse("");
  CHECK(empty.normalizer.add_dummy_prefix);
  CHECK(empty.trainer.type == spm::model_type::unigram);
  CHECK(empty.trainer.unk_piece == "<unk>");

  // Every proper prefix either parses (at a field boundary) or fails cleanly.
  int rejected = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    try {
      (void)spm::parse(std::string_view(bytes).substr(0, n), "cut.model");
    } catch (const gf::error& e) {
      ++rejected;
      CHECK(e.code() == gf::errc::format);
      CHECK(std::string(e.what()).rfind("cut.model: corrupt SentencePiece model", 0) == 0);
    }
  }
  CHECK(rejected > int(bytes.size()) / 2);
  // Unknown fields of every wire type are skipped.
  std::string extra = bytes;
  extra += std::string("\x48\x05", 2);              // field 9, varint
  extra += std::string("\x51", 1) + std::string(8, '\x01');  // field 10, fixed64
  extra += std::string("\x5a\x02xy", 4);            // field 11, bytes
  extra += std::string("\x65", 1) + std::string(4, '\x02');  // field 12, fixed32
  CHECK(spm::parse(extra).pieces.size() == 6);
  CHECK_THROWS_AS(spm::parse(std::string("\x0b", 1)), gf::error);  // wire type 3 (groups) unsupported
  CHECK_THROWS_AS(spm::parse(std::string("\x00", 1)), gf::error);  // field 0
}

// ------------------------------------------------------------------------ chat templates (text)
TEST_CASE("chat templates: Gemma", "[cpu][tokenizer]") {
  using gf::chat_message;
  std::vector<chat_message> one = {{"user", "  Hello!\n"}};
  CHECK(gf::render_chat(gf::chat_template::gemma, one) ==
        "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n");
  CHECK(gf::render_chat(gf::chat_template::gemma, one, {.add_generation_prompt = false, .add_bos = false}) ==
        "<start_of_turn>user\nHello!<end_of_turn>\n");
  std::vector<chat_message> sys = {{"system", " Be brief. "}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye\t"}};
  CHECK(gf::render_chat(gf::chat_template::gemma, sys) ==
        "<bos><start_of_turn>user\n Be brief. \n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
  // "model" is accepted as a synonym of "assistant"; Unicode spaces are trimmed like Python's strip().
  std::vector<chat_message> m = {{"user", "\u3000x\u00a0"}, {"model", "y"}};
  CHECK(gf::render_chat(gf::chat_template::gemma, m, {.add_generation_prompt = false}) ==
        "<bos><start_of_turn>user\nx<end_of_turn>\n<start_of_turn>model\ny<end_of_turn>\n");
  const auto segs = gf::chat_segments(gf::chat_template::gemma, one);
  REQUIRE(segs.size() == 7);
  CHECK(segs[0].special);
  CHECK(segs[2].text == "user\nHello!");
  CHECK(!segs[4].special);
  CHECK(segs[4].text == "\n");

  auto expect_invalid = [](std::vector<chat_message> msgs, std::string_view what) {
    try {
      (void)gf::render_chat(gf::chat_template::gemma, msgs);
      FAIL("no error");
    } catch (const gf::error& e) {
      CHECK(e.code() == gf::errc::invalid_argument);
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  };
  expect_invalid({{"assistant", "x"}}, "roles must alternate");
  expect_invalid({{"user", "x"}, {"user", "y"}}, "roles must alternate");
  expect_invalid({{"user", "x"}, {"system", "y"}}, "only the first message may be a system message");
  expect_invalid({{"tool", "x"}}, "expected user, assistant or model");
  CHECK_THROWS_AS(gf::render_chat(gf::chat_template::none, one), gf::error);
}

TEST_CASE("chat templates: OpenChat", "[cpu][tokenizer]") {
  std::vector<gf::chat_message> conv = {{"user", "Hello"}, {"assistant", "Hi"}, {"user", "How are you today?"}};
  // The model card's example, verbatim.
  CHECK(gf::render_chat(gf::chat_template::openchat, conv, {.add_bos = false}) ==
        "GPT4 Correct User: Hello<end_of_turn>GPT4 Correct Assistant: Hi<end_of_turn>GPT4 Correct User: How are you "
        "today?<end_of_turn>GPT4 Correct Assistant:");
  std::vector<gf::chat_message> sys = {{"system", "You are a helpful assistant."}, {"user", "Hello"}};
  CHECK(gf::render_chat(gf::chat_template::openchat, sys) ==
        "<bos>You are a helpful assistant.<end_of_turn>GPT4 Correct User: Hello<end_of_turn>GPT4 Correct Assistant:");
  static_assert(gf::models::openchat_3_5_0106_gemma::chat == gf::chat_template::openchat);
}

#ifdef GF_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>

#include <gemmaforge/runtime/text_stream.hpp>
#include <gemmaforge/tokenizer/token_text.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace {

// The small vocabulary of gf_test::synthetic_gguf (tiny-gemma3 sized: 512 tokens).
const gf::gguf_file& tiny_vocab_file() {
  static const gf_test::bytes b = gf_test::synthetic_gguf<gf::models::tiny_gemma3>({.with_tokenizer = true}).build();
  static const gf::gguf_file f = gf::gguf_file::parse(b, "tiny.gguf");
  return f;
}

bool utf8_ok(const std::string& s) { return gf::is_valid_utf8(s); }

// 1 MB inputs of four kinds: prose, one character with no whitespace (one huge "word" for BPE),
// random bytes (mostly invalid UTF-8, repaired to U+FFFD) and special-token text. Each must
// encode to in-vocabulary ids and decode back (prose and the single character exactly) within
// `bound_s` seconds. Returns the slowest encode+decode time.
double check_megabyte_inputs(const gf::tokenizer& tok, double bound_s) {
  constexpr std::size_t mb = std::size_t(1) << 20;
  std::vector<std::pair<const char*, std::string>> inputs;
  {
    std::string prose;
    const char* words[] = {"the ", "quick ", "brown ", "fox ", "jumps\n", "over ", "lazy ", "dogs, ", "caf\xC3\xA9 ", "\xE6\x97\xA5 "};
    for (std::size_t i = 0; prose.size() < mb; ++i) prose += words[(i * 7 + i / 3) % 10];
    inputs.emplace_back("prose", prose.substr(0, prose.rfind(' ', mb)));
  }
  inputs.emplace_back("one character", std::string(mb, 'a'));
  {
    std::mt19937 rng(5);
    std::string bytes(mb, '\0');
    for (auto& c : bytes) c = char(rng() & 0xff);
    inputs.emplace_back("random bytes", std::move(bytes));
  }
  {
    std::string special;
    while (special.size() < mb) special += "<start_of_turn>user\nhi<end_of_turn>\n";
    inputs.emplace_back("special tokens", std::move(special));
  }
  double slowest = 0;
  for (const auto& [what, text] : inputs) {
    INFO(what << ": " << text.size() << " bytes");
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text, {.add_bos = false});
    const std::string back = tok.decode(ids);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(ids.size() << " ids, " << s << " s");
    slowest = std::max(slowest, s);
    CHECK(s < bound_s);
    CHECK(!ids.empty());
    CHECK(std::all_of(ids.begin(), ids.end(), [&](int id) { return id >= 0 && id < tok.vocab_size(); }));
    CHECK(utf8_ok(back));
    if (std::string_view(what) == "prose" || std::string_view(what) == "one character") CHECK(back == text);
  }
  return slowest;
}

}  // namespace

TEST_CASE("tokenizer: the library accepts our serialized model and agrees on the vocabulary", "[cpu][tokenizer]") {
  const auto v = gf::tokenizer::vocabulary_from_gguf(tiny_vocab_file());
  sentencepiece::SentencePieceProcessor sp;
  const auto st = sp.LoadFromSerializedProto(gf::spm::serialize(v.proto));
  REQUIRE(st.ok());
  REQUIRE(sp.GetPieceSize() == 512);
  const spm::model_proto back = spm::parse(gf::spm::serialize(v.proto));
  for (int i = 0; i < 512; ++i) {
    CHECK(sp.IdToPiece(i) == back.pieces[std::size_t(i)].text);
    CHECK(sp.IsControl(i) == (back.pieces[std::size_t(i)].type == spm::piece_type::control));
    CHECK(sp.IsByte(i) == (back.pieces[std::size_t(i)].type == spm::piece_type::byte));
  }
  CHECK(sp.unk_id() == 3);
  CHECK(sp.bos_id() == 2);
  CHECK(sp.eos_id() == 1);
  CHECK(sp.pad_id() == 0);
  CHECK(back.trainer.type == spm::model_type::bpe);
  CHECK(back.trainer.byte_fallback);
  CHECK(!back.normalizer.add_dummy_prefix);
  CHECK(!back.normalizer.remove_extra_whitespaces);
  CHECK(back.pieces[std::size_t(sp.PieceToId("\xE2\x96\x81\xE2\x96\x81"))].type == spm::piece_type::normal);  // "  " respelled
}

TEST_CASE("tokenizer: encode, special tokens, byte fallback, invalid UTF-8", "[cpu][tokenizer]") {
  const auto tok = gf::tokenizer::from_gguf(tiny_vocab_file());
  CHECK(tok.vocab_size() == 512);
  CHECK(tok.bos_id() == 2);
  CHECK(tok.eos_id() == 1);
  CHECK(tok.start_of_turn_id() == 4);
  CHECK(tok.end_of_turn_id() == 5);
  CHECK(tok.add_bos());
  const int hello = tok.piece_to_id("hello"), world = tok.piece_to_id("\xE2\x96\x81world");
  CHECK(tok.encode("hello world") == std::vector<int>{2, hello, world});
  CHECK(tok.encode("hello world", {.add_bos = false}) == std::vector<int>{hello, world});
  CHECK(tok.encode("") == std::vector<int>{2});
  CHECK(tok.decode(tok.encode("hello world")) == "hello world");
  CHECK(tok.decode(tok.encode("hello world"), {.skip_special = false}) == "<bos>hello world");
  // Special-token text is one token unless parse_special is off.
  CHECK(tok.encode("<start_of_turn>hello<end_of_turn>", {.add_bos = false}) == std::vector<int>{4, hello, 5});
  const auto plain = tok.encode("<start_of_turn>", {.add_bos = false, .parse_special = false});
  CHECK(plain.size() > 1);
  CHECK(std::find(plain.begin(), plain.end(), 4) == plain.end());
  CHECK(tok.decode(plain) == "<start_of_turn>");
  // Characters outside the vocabulary fall back to their UTF-8 bytes.
  const int c3 = tok.piece_to_id("<0xC3>"), a9 = tok.piece_to_id("<0xA9>");
  CHECK(tok.encode("\xC3\xA9", {.add_bos = false}) == std::vector<int>{c3, a9});
  CHECK(tok.decode(std::vector<int>{c3, a9}) == "\xC3\xA9");
  // Invalid UTF-8 is repaired to U+FFFD before encoding, never an error.
  CHECK(tok.encode("\xff") == tok.encode("\xEF\xBF\xBD"));
  CHECK(tok.encode("a\xe2\x82" "b") == tok.encode("a\xEF\xBF\xBD" "b"));
  CHECK(tok.encode(std::string("\0x\0", 3), {.add_bos = false}).size() >= 3);
  // Out-of-range ids are an invalid argument.
  CHECK_THROWS_AS(tok.decode(std::vector<int>{512}), gf::error);
  CHECK_THROWS_AS(tok.piece(-1), gf::error);
  try {
    (void)tok.decode(std::vector<int>{-5});
  } catch (const gf::error& e) {
    CHECK(e.code() == gf::errc::invalid_argument);
    CHECK(std::string(e.what()) == "token id -5 is outside the vocabulary [0, 512)");
  }
}

TEST_CASE("tokenizer: empty and 1 MB inputs (prose, no whitespace, random bytes, special tokens)", "[cpu][tokenizer]") {
  const auto tok = gf::tokenizer::from_gguf(tiny_vocab_file());
  CHECK(tok.encode("", {.add_bos = false}).empty());
  CHECK(tok.decode(std::vector<int>{}).empty());
  CHECK(tok.decode(std::vector<int>{2}).empty());  // only a special token: nothing to show
  // Bound: generous for the sanitizer build; the normal build takes well under a second each.
  const double slowest = check_megabyte_inputs(tok, 30.0);
  INFO("slowest 1 MB encode+decode: " << slowest << " s");
  SUCCEED();
}

// Bounded encoding (a server's guard, issue 20): a text that fits gives exactly encode()'s ids;
// a longer one stops at max_tokens + 1 ids whatever its length, after work proportional to the
// bound (a 64 MB text is refused as fast as a short one).
TEST_CASE("tokenizer: bounded encode stops past max_tokens, exact when it fits", "[cpu][tokenizer]") {
  const auto tok = gf::tokenizer::from_gguf(tiny_vocab_file());
  std::string prose;
  const char* words[] = {"hello ", "world ", "caf\xC3\xA9 ", "<start_of_turn>", "x", "\xE6\x97\xA5 ", "\n"};
  for (std::size_t i = 0; prose.size() < 20000; ++i) prose += words[(i * 5 + i / 4) % 7];
  for (std::size_t len : {0u, 1u, 7u, 100u, 1000u, 20000u}) {
    const std::string text = prose.substr(0, len);
    const auto full = tok.encode(text);
    for (std::size_t max : {1u, 5u, 64u, 300u, 5000u, 100000u}) {
      INFO("len " << len << ", max_tokens " << max << ", full " << full.size());
      const auto b = tok.encode(text, {.max_tokens = max});
      if (full.size() <= max) {
        CHECK(b == full);
      } else {
        CHECK(b.size() == max + 1);
        CHECK(b.front() == full.front());
      }
    }
  }
  // 64 MB of one character: refused after a window of a few KB.
  const std::string huge(std::size_t(64) << 20, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  const auto b = tok.encode(huge, {.max_tokens = 1000});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(b.size() == 1001);
  CHECK(secs < 5.0);
}

TEST_CASE("tokenizer: streaming detokenizer never emits half a character", "[cpu][tokenizer]") {
  const auto tok = gf::tokenizer::from_gguf(tiny_vocab_file());
  auto id = [&](const char* p) { return tok.piece_to_id(p); };
  // "€" = E2 82 AC as three byte-fallback tokens, then a word.
  auto s = tok.stream();
  CHECK(s.push(id("<0xE2>")).empty());
  CHECK(s.push(id("<0x82>")).empty());
  CHECK(s.pending_bytes() == 2);
  CHECK(s.push(id("<0xAC>")) == "\xE2\x82\xAC");
  CHECK(s.push(id("hello")) == "hello");
  CHECK(s.flush().empty());
  // An unfinished character at the end becomes U+FFFD; a byte that cannot continue one, at once.
  auto s2 = tok.stream();
  CHECK(s2.push(id("<0xF0>")).empty());
  CHECK(s2.push(id("<0x9F>")).empty());
  CHECK(s2.push(id("hello")) == "\xEF\xBF\xBDhello");
  CHECK(s2.push(id("<0xC3>")).empty());
  CHECK(s2.flush() == "\xEF\xBF\xBD");
  // Special tokens are skipped by default.
  auto s3 = tok.stream();
  CHECK(s3.push(tok.bos_id()).empty());
  CHECK(s3.push(tok.end_of_turn_id()).empty());
  auto s4 = tok.stream({.skip_special = false});
  CHECK(s4.push(tok.end_of_turn_id()) == "<end_of_turn>");

  // Random id sequences: every emitted chunk is valid UTF-8, and the chunks add up to decode().
  const gf::tokenizer_text engine_text(std::make_shared<const gf::tokenizer>(gf::tokenizer::from_gguf(tiny_vocab_file())));
  std::mt19937 rng(11);
  std::vector<int> pool(std::size_t(tok.vocab_size()));
  std::iota(pool.begin(), pool.end(), 0);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<int> ids;
    const int n = int(rng() % 24);
    ids.reserve(std::size_t(n));
    for (int k = 0; k < n; ++k) {
      // Mostly byte tokens, to split characters across tokens often.
      ids.push_back(rng() % 3 ? tok.piece_to_id("<0x" + std::string(1, "89ABCDEF"[rng() % 8]) + std::string(1, "0123456789ABCDEF"[rng() % 16]) + ">")
                              : pool[rng() % pool.size()]);
    }
    auto st = tok.stream();
    std::string all;
    for (int i : ids) {
      const std::string chunk = st.push(i);
      CHECK(utf8_ok(chunk));
      all += chunk;
    }
    const std::string tail = st.flush();
    CHECK(utf8_ok(tail));
    all += tail;
    CHECK(all == tok.decode(ids));
    // The engine's stream of the same ids (runtime/text_stream.hpp) runs the same byte assembly;
    // it keeps the dummy-prefix space that decode() drops at the start of a whole text.
    gf::text_stream engine_stream(&engine_text);
    std::string engine_all;
    for (int i : ids) engine_all += engine_stream.push(i);
    engine_all += engine_stream.flush();
    if (tok.strips_leading_space() && !engine_all.empty() && engine_all.front() == ' ') engine_all.erase(0, 1);
    CHECK(engine_all == all);
  }
}

TEST_CASE("tokenizer: bad GGUF vocabularies fail cleanly", "[cpu][tokenizer]") {
  auto build = [](auto&& mutate) {
    gf_test::gguf_builder g;
    g.kv_str("general.architecture", "gemma3");
    mutate(g);
    return g.build();
  };
  auto expect = [](const gf_test::bytes& b, std::string_view what) {
    try {
      (void)gf::tokenizer::from_gguf(gf::gguf_file::parse(b, "vocab.gguf"));
      FAIL("no error");
    } catch (const gf::error& e) {
      CHECK(e.code() == gf::errc::format);
      INFO(e.what());
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  };
  auto base = [](gf_test::gguf_builder& g, const std::vector<std::string>& toks, const std::vector<std::int32_t>& types) {
    g.kv_str("tokenizer.ggml.model", "llama");
    g.kv_str_array("tokenizer.ggml.tokens", toks);
    g.kv_array<std::int32_t>("tokenizer.ggml.token_type", gf_test::gguf_builder::i32, types);
    g.kv_u32("tokenizer.ggml.unknown_token_id", 0);
  };
  expect(build([](auto& g) { g.kv_str("tokenizer.ggml.model", "gpt2"); }), "only SentencePiece vocabularies");
  expect(build([](auto&) {}), "metadata key 'tokenizer.ggml.model' is missing");
  expect(build([&](auto& g) { base(g, {"<unk>", "a"}, {2}); }), "1 token types for 2 tokens");
  expect(build([&](auto& g) { base(g, {"<unk>", "a"}, {2, 9}); }), "token 1 has unknown type 9");
  expect(build([&](auto& g) { base(g, {"<unk>", "<0xZZ>"}, {2, 6}); }), "byte token 1 '<0xZZ>' is not of the form <0xNN>");
  expect(build([&](auto& g) { base(g, {"<unk>", "a", "a"}, {2, 1, 1}); }), "token 2 'a' duplicates token 1");
  expect(build([&](auto& g) { base(g, {"<unk>", ""}, {2, 1}); }), "token 1 is empty");
  expect(build([&](auto& g) {
           base(g, {"<unk>", "a"}, {2, 1});
           g.kv_u32("tokenizer.ggml.bos_token_id", 7);
         }),
         "tokenizer.ggml.bos_token_id = 7 is outside the vocabulary of 2");
  expect(build([&](auto& g) {
           base(g, {"<unk>", "a"}, {2, 1});
           g.template kv_array<float>("tokenizer.ggml.scores", gf_test::gguf_builder::f32, {0.0f, std::numeric_limits<float>::infinity()});
         }),
         "'tokenizer.ggml.scores': element 1 is infinite");
}

// ------------------------------------------------------------------------ the real vocabulary
#ifdef GF_HAVE_JSON
#include <nlohmann/json.hpp>

#include <fstream>

namespace {
const gf::tokenizer& real_tokenizer() {
  static const gf::tokenizer t = gf::tokenizer::load(gf_test::model_path());
  return t;
}
nlohmann::json fixture() {
  std::ifstream in(std::string(GF_TEST_DATA_DIR) + "/golden/tokenizer/gemma3_270m.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}
}  // namespace

TEST_CASE("tokenizer: Gemma 3 270M matches the reference ids on every fixture string", "[tokenizer][model]") {
  const auto& tok = real_tokenizer();
  const auto j = fixture();
  CHECK(tok.vocab_size() == j["vocab_size"].get<int>());
  CHECK(tok.bos_id() == j["bos_id"].get<int>());
  CHECK(tok.eos_id() == j["eos_id"].get<int>());
  CHECK(tok.pad_id() == j["pad_id"].get<int>());
  CHECK(tok.start_of_turn_id() == 105);
  CHECK(tok.end_of_turn_id() == 106);
  CHECK(tok.add_bos());
  CHECK(tok.is_end_of_generation(1));
  CHECK(tok.is_end_of_generation(106));
  int checked = 0;
  for (const auto& c : j["cases"]) {
    std::string text = c["text"].get<std::string>();
    if (c.contains("bytes_hex")) {  // the raw invalid bytes; expected ids are those of their repair
      const std::string h = c["bytes_hex"].get<std::string>();
      text.clear();
      for (std::size_t i = 0; i < h.size(); i += 2) text += char(std::stoi(h.substr(i, 2), nullptr, 16));
    }
    INFO("case " << c.dump());
    const std::vector<int> want = c["ids"].get<std::vector<int>>();
    const std::vector<int> got = tok.encode(text);
    CHECK(got == want);
    CHECK(tok.decode(want) == c["decoded"].get<std::string>());
    CHECK(tok.decode(want, {.skip_special = false}) == c["decoded_with_special"].get<std::string>());
    auto s = tok.stream();
    std::string streamed;
    for (int id : want) streamed += s.push(id);
    streamed += s.flush();
    CHECK(streamed == c["decoded"].get<std::string>());
    ++checked;
  }
  CHECK(checked >= 60);
  WARN(checked << " fixture strings checked against the reference ids");
}

TEST_CASE("tokenizer: Gemma 3 270M chat prompts match the reference templates", "[tokenizer][model]") {
  const auto& tok = real_tokenizer();
  const auto j = fixture();
  int checked = 0;
  for (const auto& c : j["chats"]) {
    std::vector<gf::chat_message> msgs;
    for (const auto& m : c["messages"]) msgs.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    const auto kind = c["template"] == "gemma" ? gf::chat_template::gemma : gf::chat_template::openchat;
    const gf::chat_options o{.add_generation_prompt = c["add_generation_prompt"].get<bool>()};
    INFO(c.dump());
    CHECK(gf::render_chat(kind, msgs, o) == c["text"].get<std::string>());
    CHECK(gf::render_chat_ids(tok, kind, msgs, o) == c["ids"].get<std::vector<int>>());
    ++checked;
  }
  CHECK(checked == 20);
  // Content that spells a special token stays text inside a chat prompt.
  const std::vector<gf::chat_message> inj = {{"user", "hi<end_of_turn>"}};
  const auto ids = gf::render_chat_ids<gf::models::gemma_3_270m>(tok, inj);
  CHECK(std::count(ids.begin(), ids.end(), tok.end_of_turn_id()) == 1);
}

TEST_CASE("tokenizer: a tokenizer.model file and an HF directory load the same vocabulary", "[tokenizer][model]") {
  const auto v = gf::tokenizer::vocabulary_from_gguf(gf::gguf_file::open(gf_test::model_path()));
  gf_test::temp_dir d;
  gf_test::write_file(d / "tokenizer.model", gf::spm::serialize(v.proto));
  const auto a = gf::tokenizer::load(d.path());
  const auto b = gf::tokenizer::load(d / "tokenizer.model");
  const auto& ref = real_tokenizer();
  for (const char* s : {"Hello world", "  two  spaces\n\n", "<start_of_turn>user\n日本語<end_of_turn>", "🤗 ∂x"}) {
    CHECK(a.encode(s) == ref.encode(s));
    CHECK(b.encode(s) == ref.encode(s));
  }
  CHECK_THROWS_AS(gf::tokenizer::load(d / "missing.model"), gf::error);
  gf_test::write_file(d / "bad.model", std::string_view("\x0a\xff\xff\xff\x0f"));
  CHECK_THROWS_AS(gf::tokenizer::load(d / "bad.model"), gf::error);
}

TEST_CASE("tokenizer: 1 MB inputs on the real Gemma 3 vocabulary", "[tokenizer][model]") {
  const double slowest = check_megabyte_inputs(real_tokenizer(), 30.0);
  INFO("slowest 1 MB encode+decode: " << slowest << " s");
  SUCCEED();
}
#endif  // GF_HAVE_JSON
#endif  // GF_HAVE_SENTENCEPIECE
