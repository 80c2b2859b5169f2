// Bad input: every broken file must produce gf::error with the right category and a message that
// names the file and the fault, never a crash, an out-of-bounds read or a huge allocation.
// Files are built on the fly (tests/unit/io_test_support.hpp); the real 270M file is truncated
// and bit-flipped too ([model]).
#include <catch2/catch.hpp>

#include "support/test_models.hpp"
#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/io/gguf.hpp>
#include <gemmaforge/io/safetensors.hpp>
#include <gemmaforge/io/weight_binding.hpp>

#include <random>
#include <string>
#include <vector>

#include "io_test_support.hpp"

namespace gf = gemmaforge;
using gf_test::bytes;
using gf_test::gguf_builder;

namespace {

int bad_inputs_tried = 0;

// Run f; it must throw gf::error of category `code` whose message contains every `parts` entry.
template <class F>
void expect_error(F&& f, gf::errc code, std::initializer_list<std::string_view> parts) {
  ++bad_inputs_tried;
  try {
    f();
  } catch (const gf::error& e) {
    INFO("message: " << e.what());
    CHECK(e.code() == code);
    for (auto p : parts) CHECK(std::string(e.what()).find(p) != std::string::npos);
    return;
  }
  FAIL("no error thrown");
}

void expect_gguf_error(const bytes& b, std::initializer_list<std::string_view> parts) {
  expect_error([&] { (void)gf::gguf_file::parse(b, "bad.gguf"); }, gf::errc::format, parts);
}

// A well-formed small file with metadata and three tensors.
gguf_builder small_file() {
  gguf_builder g;
  g.kv_str("general.architecture", "gemma3");
  g.kv_u32("gemma3.block_count", 1);
  g.kv_str_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  g.add_tensor({"t0", {8, 2}, 0, bytes(64, std::byte{1})});
  g.add_tensor({"t1", {32}, 8, bytes(34, std::byte{2})});
  g.add_tensor({"t2", {4}, 0, bytes(16, std::byte{3})});
  return g;
}

void patch_u64(bytes& b, std::size_t at, std::uint64_t v) { std::memcpy(b.data() + at, &v, 8); }
void patch_u32(bytes& b, std::size_t at, std::uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

}  // namespace

TEST_CASE("bad gguf: missing, empty, directory", "[cpu][io]") {
  gf_test::temp_dir d;
  expect_error([&] { (void)gf::gguf_file::open(d / "nope.gguf"); }, gf::errc::io, {"nope.gguf", "no such file"});
  gf_test::write_file(d / "empty.gguf", bytes{});
  expect_error([&] { (void)gf::gguf_file::open(d / "empty.gguf"); }, gf::errc::format, {"empty.gguf", "file is empty"});
  expect_error([&] { (void)gf::gguf_file::open(d.path()); }, gf::errc::io, {"is a directory"});
  expect_error([&] { (void)gf::model_file::open(d / "nope.gguf"); }, gf::errc::io, {"nope.gguf", "no such file"});
  gf_test::write_file(d / "tiny.gguf", std::string_view("GG"));
  expect_error([&] { (void)gf::gguf_file::open(d / "tiny.gguf"); }, gf::errc::format, {"too small to be GGUF"});
}

TEST_CASE("bad gguf: header faults", "[cpu][io]") {
  const bytes good = small_file().build();
  REQUIRE_NOTHROW(gf::gguf_file::parse(good, "good.gguf"));

  bytes b = good;
  std::memcpy(b.data(), "GGML", 4);
  expect_gguf_error(b, {"bad.gguf: not a GGUF file: magic bytes are 0x47474d4c"});

  for (auto [version, what] : {std::pair{1u, "version 1"}, {99u, "unsupported GGUF version 99"},
                               {0x03000000u, "big-endian GGUF files are not supported"}}) {
    b = good;
    patch_u32(b, 4, version);
    expect_gguf_error(b, {what});
  }
  b = good;
  patch_u64(b, 8, std::uint64_t(1) << 60);
  expect_gguf_error(b, {"tensor count 1152921504606846976 is more than the file could hold"});
  b = good;
  patch_u64(b, 16, std::uint64_t(1) << 62);
  expect_gguf_error(b, {"metadata count", "more than the file could hold"});
  b = good;
  patch_u64(b, 24, std::uint64_t(1) << 62);  // the first key's length
  expect_gguf_error(b, {"metadata key #0", "claims 4611686018427387904 bytes"});
}

TEST_CASE("bad gguf: metadata faults", "[cpu][io]") {
  {
    gguf_builder g;
    g.kv_str("k", "v").kv_str("k", "w");
    expect_gguf_error(g.build(), {"duplicate metadata key 'k'"});
  }
  {
    gguf_builder g;
    g.kv_raw("weird", 13, bytes(4));
    expect_gguf_error(g.build(), {"metadata key 'weird' has unknown value type 13"});
  }
  {
    gguf_builder g;
    g.kv_u32("bad\xff" "key", 1);
    expect_gguf_error(g.build(), {"metadata key #0 is not valid UTF-8", "bad\\xffkey"});
  }
  {
    gguf_builder g;
    g.kv_str("general.name", "ok\xc3");
    expect_gguf_error(g.build(), {"'general.name': string value is not valid UTF-8"});
  }
  {
    gguf_builder g;
    g.kv_str_array("tokenizer.ggml.tokens", {"a", "b\xed\xa0\x80"});
    expect_gguf_error(g.build(), {"'tokenizer.ggml.tokens': element 1 is not valid UTF-8"});
  }
  {
    gguf_builder g;
    g.kv_str("", "empty key");
    expect_gguf_error(g.build(), {"metadata key #0 is empty"});
  }
  {
    gguf_builder g;
    g.kv("flag", gguf_builder::boolean, std::uint8_t(2));
    expect_gguf_error(g.build(), {"'flag': bool value 2 is neither 0 nor 1"});
  }
  {
    bytes arr;
    gguf_builder::put<std::uint32_t>(arr, gguf_builder::f32);
    gguf_builder::put<std::uint64_t>(arr, std::uint64_t(1) << 61);
    gguf_builder g;
    g.kv_raw("big", gguf_builder::array, arr);
    expect_gguf_error(g.build(), {"'big': array of 2305843009213693952 f32 elements does not fit"});
  }
  {
    bytes arr;
    gguf_builder::put<std::uint32_t>(arr, 42);
    gguf_builder::put<std::uint64_t>(arr, 1);
    gguf_builder g;
    g.kv_raw("arr", gguf_builder::array, arr);
    expect_gguf_error(g.build(), {"'arr': unknown array element type 42"});
  }
  {
    // 20 levels of single-element arrays nested in each other.
    bytes arr;
    for (int i = 0; i < 20; ++i) {
      gguf_builder::put<std::uint32_t>(arr, gguf_builder::array);
      gguf_builder::put<std::uint64_t>(arr, 1);
    }
    gguf_builder::put<std::uint32_t>(arr, gguf_builder::u8);
    gguf_builder::put<std::uint64_t>(arr, 0);
    gguf_builder g;
    g.kv_raw("deep", gguf_builder::array, arr);
    expect_gguf_error(g.build(), {"arrays nested deeper than 8"});
  }
  for (std::uint32_t al : {0u, 3u, 1u << 24}) {
    gguf_builder g;
    g.kv_u32("general.alignment", al);
    expect_gguf_error(g.build(), {"general.alignment = " + std::to_string(al) + " is not a power of two"});
  }
  {
    gguf_builder g;
    g.kv_str("general.alignment", "32");
    expect_gguf_error(g.build(), {"general.alignment has type string, expected u32"});
  }
}

TEST_CASE("bad gguf: tensor faults", "[cpu][io]") {
  auto one = [](gguf_builder::tensor t) {
    gguf_builder g;
    g.add_tensor(std::move(t));
    return g.build();
  };
  expect_gguf_error(one({"t", {}, 0, {}}), {"tensor 't' has 0 dimensions (1 to 4 supported)"});
  expect_gguf_error(one({"t", {1, 1, 1, 1, 1}, 0, bytes(4)}), {"tensor 't' has 5 dimensions"});
  expect_gguf_error(one({"t", {4, 0}, 0, {}}), {"tensor 't' has a zero-sized dimension 1"});
  expect_gguf_error(one({"t", {std::uint64_t(1) << 40, std::uint64_t(1) << 40}, 0, {}}),
                    {"tensor 't' has an absurd element count"});
  expect_gguf_error(one({"t", {4}, 99, bytes(16)}), {"tensor 't' has unknown ggml type id 99"});
  expect_gguf_error(one({"t", {100, 2}, 12, bytes(288)}), {"row length 100 is not a multiple of the q4_k block size 256"});
  expect_gguf_error(one({"", {4}, 0, bytes(16)}), {"tensor #0 has an empty name"});
  expect_gguf_error(one({"t", {4}, 0, bytes(16), 8}), {"tensor 't': data offset 8 is not a multiple of the alignment 32"});
  expect_gguf_error(one({"t", {4}, 0, bytes(16), std::uint64_t(1) << 62}), {"tensor 't': data", "runs past the end of the file"});
  expect_gguf_error(one({"t", {4}, 0, bytes(16), std::uint64_t(-32)}), {"runs past the end of the file"});  // offset + size overflows
  {
    gguf_builder g;
    g.add_tensor({"t", {4}, 0, bytes(16)});
    g.add_tensor({"t", {4}, 0, bytes(16)});
    expect_gguf_error(g.build(), {"duplicate tensor name 't'"});
  }
  {
    gguf_builder g;
    g.add_tensor({"a", {16}, 0, bytes(64), 0});
    g.add_tensor({"b", {4}, 0, bytes(16), 32});
    expect_gguf_error(g.build(), {"tensors 'a' and 'b' overlap in the data section"});
  }
  {
    // Data missing altogether: the file ends right after the tensor infos.
    bytes b = small_file().build();
    const auto f = gf::gguf_file::parse(b, "x");
    b.resize(f.data_offset() - 5);
    expect_gguf_error(b, {"bad.gguf: truncated"});
  }
  {
    // An unknown-to-gemmaforge but known ggml type parses; binding reports it.
    gguf_builder g;
    g.add_tensor({"q", {32}, 2, bytes(18)});
    const bytes b = g.build();
    const auto f = gf::gguf_file::parse(b, "x");
    CHECK(!f.find_tensor("q")->format);
    CHECK(f.find_tensor("q")->type_name == "q4_0");
  }
}

TEST_CASE("bad gguf: truncated at 10 random points", "[cpu][io]") {
  const bytes good = gf_test::synthetic_gguf<gf::models::tiny_gemma3>({.with_tokenizer = true}).build();
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::size_t> at(1, good.size() - 1);
  for (int i = 0; i < 10; ++i) {
    const std::size_t n = at(rng);
    INFO("truncated to " << n << " of " << good.size() << " bytes");
    const bytes b(good.begin(), good.begin() + std::ptrdiff_t(n));
    ++bad_inputs_tried;
    try {
      (void)gf::gguf_file::parse(b, "cut.gguf");
      FAIL("truncated file parsed");
    } catch (const gf::error& e) {
      const std::string m = e.what();
      CHECK(e.code() == gf::errc::format);
      CHECK(m.rfind("cut.gguf: ", 0) == 0);
      CHECK((m.find("truncated") != std::string::npos || m.find("past the end") != std::string::npos ||
             m.find("could hold") != std::string::npos || m.find("does not fit") != std::string::npos ||
             m.find("too small") != std::string::npos));
    }
  }
}

TEST_CASE("bad gguf: random bit flips in the header never crash", "[cpu][io]") {
  const bytes good = gf_test::synthetic_gguf<gf::models::tiny_gemma3>({.with_tokenizer = true}).build();
  const std::size_t header = gf::gguf_file::parse(good, "x").data_offset();
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> pos(0, header - 1);
  int failed = 0;
  for (int i = 0; i < 400; ++i) {
    bytes b = good;
    const int flips = 1 + int(rng() % 3);
    for (int k = 0; k < flips; ++k) b[pos(rng)] ^= std::byte(1u << (rng() % 8));
    ++bad_inputs_tried;
    try {
      auto f = gf::model_file::from_gguf_bytes(b, "flipped.gguf");
      (void)gf::bind_model<gf::models::tiny_gemma3>(f);
    } catch (const gf::error& e) {
      ++failed;
      CHECK(std::string(e.what()).rfind("flipped.gguf: ", 0) == 0);
    }
  }
  INFO(failed << " of 400 flipped files were rejected");
  CHECK(failed > 0);
}

TEST_CASE("bad gguf: model-level mismatches are reported all at once", "[cpu][io]") {
  using namespace gf::models;
  {
    // A gemma3 file with 26 layers of tiny shapes, bound as tiny-gemma3 (6 layers).
    const bytes b = gf_test::synthetic_gguf<tiny_gemma3>({.layers = 26}).build();
    expect_error([&] { (void)gf::bind_model<tiny_gemma3>(gf::model_file::from_gguf_bytes(b, "26.gguf")); },
                 gf::errc::model_mismatch, {"26.gguf: cannot bind as tiny-gemma3", "file has 26 layers, tiny-gemma3 expects 6"});
  }
  {
    // Gemma 3 1B's facts (metadata only), bound as gemma-3-270m.
    gguf_builder g;
    g.kv_str("general.architecture", "gemma3");
    g.kv_u32("gemma3.block_count", 26).kv_u32("gemma3.embedding_length", 1152).kv_u32("gemma3.feed_forward_length", 6912);
    g.kv_u32("gemma3.attention.head_count", 4).kv_u32("gemma3.attention.head_count_kv", 1);
    g.kv_u32("gemma3.attention.key_length", 256);
    const bytes b = g.build();
    auto f = gf::model_file::from_gguf_bytes(b, "1b.gguf");
    CHECK(f->facts().layers == 26);
    expect_error([&] { (void)gf::bind_model<gemma_3_270m>(f); }, gf::errc::model_mismatch,
                 {"file has 26 layers, gemma-3-270m expects 18", "file has hidden size 1152, gemma-3-270m expects 640",
                  "file has feed-forward size 6912, gemma-3-270m expects 2048", "missing tensor token_embd.weight",
                  "missing tensor blk.0.attn_q.weight (q of layer 0)", "... and"});
    // identify: no vocabulary stated, so nothing matches; the closest is gemma-3-1b.
    expect_error([&] { (void)gf::identify_model(*f); }, gf::errc::model_mismatch,
                 {"no registered model matches this file", "the closest is gemma-3-1b",
                  "file does not state its vocabulary size (gemma-3-1b expects 262144)"});
  }
  {
    // Wrong architecture.
    const bytes b = gf_test::synthetic_gguf<tiny_gemma3>({.arch = "bert"}).build();
    auto f = gf::model_file::from_gguf_bytes(b, "bert.gguf");
    expect_error([&] { (void)gf::bind_model<tiny_gemma3>(f); }, gf::errc::model_mismatch,
                 {"file is a bert model, tiny-gemma3 is gemma3"});
    expect_error([&] { (void)gf::identify_model(*f); }, gf::errc::model_mismatch, {"no registered model matches", "bert"});
  }
  {
    // Right shapes, wrong descriptor facts: another softcap and window than tiny-gemma2's.
    const bytes b = gf_test::synthetic_gguf<tiny_gemma2>({.attn_softcap = 30.0f, .window = 16}).build();
    auto f = gf::model_file::from_gguf_bytes(b, "caps.gguf");
    CHECK(gf::identify_model<gf::testing::registry_with_test_models>(*f) == "tiny-gemma2");  // identification uses shapes only
    expect_error([&] { (void)gf::bind_model<tiny_gemma2>(f); }, gf::errc::model_mismatch,
                 {"(2 problems)", "file has a sliding window of 16, tiny-gemma2 expects 8",
                  "file has attention softcap 30, tiny-gemma2 expects 50"});
  }
  {
    // Unsupported storage format, a quantized norm, a NaN norm, a missing and a misshapen tensor:
    // one error lists all of them.
    auto g = gf_test::synthetic_gguf<tiny_gemma1>();
    bytes b = g.build();
    auto parsed = gf::gguf_file::parse(b, "x");
    // Patch the type of blk.0.attn_q.weight (f32 -> i32, same size), poison blk.1.attn_norm.
    const gf::gguf_tensor* q = parsed.find_tensor("blk.0.attn_q.weight");
    const gf::gguf_tensor* n = parsed.find_tensor("blk.1.attn_norm.weight");
    REQUIRE(q);
    REQUIRE(n);
    const std::size_t q_info_type = std::size_t(reinterpret_cast<const std::byte*>(q->name.data()) - b.data()) + q->name.size() + 4 + 16;
    patch_u32(b, q_info_type, 26);  // i32
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(b.data() + (n->data - parsed.bytes().data()) + 8, &nan, 4);
    auto f = gf::model_file::from_gguf_bytes(b, "mixed.gguf");
    expect_error([&] { (void)gf::bind_model<tiny_gemma1>(f); }, gf::errc::model_mismatch,
                 {"mixed.gguf: cannot bind as tiny-gemma1 (2 problems)", "tensor blk.0.attn_q.weight: unsupported format i32",
                  "tensor blk.1.attn_norm.weight contains NaN or Inf"});
  }
  {
    auto g = gf_test::synthetic_gguf<tiny_gemma1>({.norm_format = gf::tensor_format::q8_0});
    // q8_0 norms of 64 elements are two blocks: valid GGUF, refused by the binder.
    const bytes b = g.build();
    expect_error([&] { (void)gf::bind_model<tiny_gemma1>(gf::model_file::from_gguf_bytes(b, "qn.gguf")); }, gf::errc::format,
                 {"norm stored as q8_0; norms must be f32, f16 or bf16"});
  }
  {
    // A file with no layers at all.
    gguf_builder g = gf_test::synthetic_gguf<tiny_gemma1>({.layers = 0});
    const bytes b = g.build();
    expect_error([&] { (void)gf::bind_model<tiny_gemma1>(gf::model_file::from_gguf_bytes(b, "0.gguf")); },
                 gf::errc::model_mismatch, {"file has 0 layers, tiny-gemma1 expects 2", "missing tensor blk.1.ffn_down.weight"});
  }
  {
    gguf_builder g;
    g.kv_str("general.architecture", "gemma3");
    g.kv("gemma3.rope.freq_base", gguf_builder::f32, std::numeric_limits<float>::quiet_NaN());
    const bytes b = g.build();
    expect_error([&] { (void)gf::model_file::from_gguf_bytes(b, "nan.gguf"); }, gf::errc::format,
                 {"nan.gguf: metadata key 'gemma3.rope.freq_base' is NaN"});
  }
  {
    gguf_builder g;
    g.kv_u32("general.block_count", 1);
    const bytes b = g.build();
    expect_error([&] { (void)gf::model_file::from_gguf_bytes(b, "noarch.gguf"); }, gf::errc::format,
                 {"noarch.gguf: metadata key 'general.architecture' is missing"});
  }
}

TEST_CASE("bad safetensors and config.json", "[cpu][io]") {
  auto st = [](const std::string& header, std::size_t data = 0) {
    bytes b;
    gguf_builder::put<std::uint64_t>(b, header.size());
    for (char c : header) b.push_back(std::byte(c));
    b.resize(b.size() + data);
    return b;
  };
  auto expect_st = [&](const bytes& b, std::initializer_list<std::string_view> parts) {
    expect_error([&] { (void)gf::safetensors_file::parse(b, "bad.safetensors"); }, gf::errc::format, parts);
  };
  REQUIRE_NOTHROW(gf::safetensors_file::parse(st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8), "ok"));
  expect_st(bytes(4), {"too small to be safetensors"});
  {
    bytes b = st("{}");
    patch_u64(b, 0, std::uint64_t(1) << 40);
    expect_st(b, {"exceeds the 100 MiB limit"});
    patch_u64(b, 0, 1000);
    expect_st(b, {"truncated: header claims 1000 bytes"});
  }
  expect_st(st("[1,2]"), {"header does not start with '{'"});
  expect_st(st("{\"a\": "), {"invalid JSON"});
  expect_st(st("{\"a\":\"\xff\"}"), {"invalid JSON"});
  expect_st(st("{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}"), {"nested deeper than 64"});
  expect_st(st(R"({"a":1})"), {"tensor 'a': entry is not an object"});
  expect_st(st(R"({"a":{"shape":[1],"data_offsets":[0,4]}})"), {"missing or non-string \"dtype\""});
  expect_st(st(R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", 4), {"unknown dtype 'F99'"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), {"shape entry must be a non-negative integer"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4), {"shape entry must be a non-negative integer"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4), {"absurd element count"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4), {"run backwards"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 2), {"runs past the end of the file"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 8), {"F32 [2] needs 8 bytes, data_offsets give 4"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
            {"tensors 'a' and 'b' overlap"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
            {"duplicate key 'a' in the header"});
  expect_st(st(R"({"__metadata__":{"format":1}})"), {"__metadata__['format'] is not a string"});
  expect_st(st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), {"\"data_offsets\" must be [begin, end]"});

  using gf::hf_config;
  auto expect_cfg = [&](const std::string& json, gf::errc code, std::initializer_list<std::string_view> parts) {
    expect_error([&] { (void)hf_config::parse(json, "config.json"); }, code, parts);
  };
  expect_cfg("{", gf::errc::format, {"config.json: invalid JSON"});
  expect_cfg("[]", gf::errc::format, {"not a JSON object"});
  expect_cfg(R"({"model_type":"llama","hidden_size":8})", gf::errc::model_mismatch, {"model_type 'llama' is not a Gemma text model"});
  expect_cfg(R"({"model_type":"gemma","intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":1})", gf::errc::format,
             {"\"hidden_size\" is missing"});
  expect_cfg(R"({"model_type":"gemma","hidden_size":"64","intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":1})",
             gf::errc::format, {"\"hidden_size\" must be an integer"});
  expect_cfg(R"({"model_type":"gemma","hidden_size":-64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":1})",
             gf::errc::format, {"hidden_size = -64 is not a positive size"});
  expect_cfg(R"({"model_type":"gemma3"})", gf::errc::format, {"model_type gemma3 without a \"text_config\" object"});
  expect_cfg(R"({"model_type":"gemma2","hidden_size":64,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":1,
                 "rope_scaling":{"rope_type":"yarn","factor":2}})",
             gf::errc::format, {"rope type 'yarn' is not supported"});

  // Checkpoint directories.
  gf_test::temp_dir d;
  expect_error([&] { (void)gf::model_file::open(d.path()); }, gf::errc::io, {"no config.json"});
  gf_test::write_file(d / "config.json", gf_test::hf_config_json<gf::models::tiny_gemma1>());
  expect_error([&] { (void)gf::model_file::open(d.path()); }, gf::errc::io, {"no model.safetensors"});
  gf_test::write_file(d / "model.safetensors.index.json", std::string_view(R"({"weight_map":{"a":"../evil.safetensors"}})"));
  expect_error([&] { (void)gf::model_file::open(d.path()); }, gf::errc::format, {"shard name '../evil.safetensors' is not a plain file name"});
  gf_test::write_file(d / "model.safetensors.index.json", std::string_view(R"({"weight_map":{"a":"missing.safetensors"}})"));
  expect_error([&] { (void)gf::model_file::open(d.path()); }, gf::errc::io, {"missing.safetensors", "no such file"});
  gf_test::write_file(d / "shard.safetensors",
                      gf_test::build_safetensors({{"b", "F32", {1}, bytes(4)}}));
  gf_test::write_file(d / "model.safetensors.index.json", std::string_view(R"({"weight_map":{"a":"shard.safetensors"}})"));
  expect_error([&] { (void)gf::model_file::open(d.path()); }, gf::errc::format, {"maps tensor 'a' to shard.safetensors, which does not contain it"});
  std::filesystem::remove(d / "model.safetensors.index.json");
  // An unsupported dtype and a truncated shard.
  auto ts = gf_test::synthetic_hf_tensors<gf::models::tiny_gemma1>("F32");
  ts[3].dtype = "I32";
  gf_test::write_file(d / "model.safetensors", gf_test::build_safetensors(ts));
  expect_error([&] { (void)gf::load_model<gf::models::tiny_gemma1>(d.path(), {.prefault = false}); }, gf::errc::format,
               {"cannot bind as tiny-gemma1 (1 problem)", "tensor model.layers.0.self_attn.k_proj.weight: unsupported format I32"});
  bytes full = gf_test::build_safetensors(gf_test::synthetic_hf_tensors<gf::models::tiny_gemma1>("F32"));
  full.resize(full.size() - 100);
  gf_test::write_file(d / "model.safetensors", full);
  expect_error([&] { (void)gf::load_model<gf::models::tiny_gemma1>(d.path()); }, gf::errc::format,
               {"model.safetensors: tensor", "runs past the end of the file"});
}

TEST_CASE("bad gguf: truncated and bit-flipped copies of the real 270M file", "[io][model]") {
  const gf::mapped_file real = gf::mapped_file::open(gf_test::model_path());
  const std::span<const std::byte> all = real.bytes();
  const std::size_t data_start = gf::gguf_file::parse(all, "real").data_offset();
  // In memory: 10 truncation points across the header and the data section.
  std::mt19937 rng(3);
  for (int i = 0; i < 10; ++i) {
    const std::size_t n = i < 5 ? rng() % data_start : data_start + rng() % (all.size() - data_start);
    INFO("truncated to " << n);
    ++bad_inputs_tried;
    CHECK_THROWS_AS(gf::gguf_file::parse(all.first(n), "real-cut"), gf::error);
  }
  // On disk: a truncated copy and a copy with a flipped bit in token_embd's dimensions.
  gf_test::temp_dir d;
  gf_test::write_file(d / "cut.gguf", all.data(), data_start + 1000);
  expect_error([&] { (void)gf::load_model<gf::models::gemma_3_270m>(d / "cut.gguf"); }, gf::errc::format,
               {"cut.gguf: tensor", "runs past the end of the file"});
  expect_error([&] { (void)gf::with_model(d / "cut.gguf", [](auto, auto&&) {}); }, gf::errc::format, {"cut.gguf"});

  bytes head(all.begin(), all.begin() + std::ptrdiff_t(data_start));
  const auto parsed = gf::gguf_file::parse(all, "real");
  const gf::gguf_tensor* e = parsed.find_tensor("token_embd.weight");
  const std::size_t dims_at = std::size_t(reinterpret_cast<const std::byte*>(e->name.data()) - all.data()) + e->name.size() + 4;
  head[dims_at + 8 + 2] ^= std::byte{0x01};  // dims[1]: 262144 -> 327680
  {
    std::ofstream f(d / "flipped.gguf", std::ios::binary);
    f.write(reinterpret_cast<const char*>(head.data()), std::streamsize(head.size()));
    f.write(reinterpret_cast<const char*>(all.data() + data_start), std::streamsize(all.size() - data_start));
  }
  expect_error([&] { (void)gf::load_model<gf::models::gemma_3_270m>(d / "flipped.gguf"); }, gf::errc::format,
               {"flipped.gguf", "token_embd.weight"});

  // Random flips in the metadata and tensor infos: load or a clean error, never a crash.
  // One copy of the file; each trial flips a bit and flips it back afterwards.
  std::uniform_int_distribution<std::size_t> pos(0, data_start - 1);
  bytes copy(all.begin(), all.end());
  int rejected = 0;
  for (int i = 0; i < 60; ++i) {
    const std::size_t p = pos(rng);
    const std::byte bit = std::byte(1u << (rng() % 8));
    copy[p] ^= bit;
    ++bad_inputs_tried;
    try {
      auto f = gf::model_file::from_gguf_bytes(copy, "flip");
      (void)gf::bind_model<gf::models::gemma_3_270m>(f);
    } catch (const gf::error&) {
      ++rejected;
    }
    copy[p] ^= bit;
  }
  INFO(rejected << " of 60 randomly flipped copies rejected");
  SUCCEED();
}

TEST_CASE("bad input count", "[cpu][io]") {
  // Not a check: reports how many bad inputs this binary tried (visible with -s).
  WARN("bad inputs tried so far in this run: " << bad_inputs_tried);
}
