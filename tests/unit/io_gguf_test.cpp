// GGUF reader: every value type (nested arrays included), typed getters and their errors,
// tensor infos and data offsets, UTF-8 helpers; the real Gemma 3 270M file ([model]).
#include <catch2/catch.hpp>

#include <gemmaforge/io/gguf.hpp>
#include <gemmaforge/io/utf8.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "io_test_support.hpp"

namespace gf = gemmaforge;
using gf_test::gguf_builder;

namespace {

gf::gguf_file parse(const gf_test::bytes& b) { return gf::gguf_file::parse(b, "test.gguf"); }

// Message and category of the error a callable throws ("" when it does not throw).
template <class F>
std::pair<gf::errc, std::string> error_of(F&& f) {
  try {
    f();
  } catch (const gf::error& e) {
    return {e.code(), e.what()};
  }
  return {gf::errc::internal, ""};
}

gf_test::bytes all_types_file() {
  gguf_builder g;
  g.kv("t.u8", gguf_builder::u8, std::uint8_t(200));
  g.kv("t.i8", gguf_builder::i8, std::int8_t(-100));
  g.kv("t.u16", gguf_builder::u16, std::uint16_t(60000));
  g.kv("t.i16", gguf_builder::i16, std::int16_t(-30000));
  g.kv("t.u32", gguf_builder::u32, std::uint32_t(4000000000u));
  g.kv("t.i32", gguf_builder::i32, std::int32_t(-2000000000));
  g.kv("t.f32", gguf_builder::f32, 1.5f);
  g.kv("t.bool", gguf_builder::boolean, std::uint8_t(1));
  g.kv_str("t.string", "héllo ✓");
  g.kv("t.u64", gguf_builder::u64, std::uint64_t(1) << 40);
  g.kv("t.i64", gguf_builder::i64, std::int64_t(-(std::int64_t(1) << 40)));
  g.kv("t.f64", gguf_builder::f64, 2.25);
  g.kv("t.nan", gguf_builder::f32, std::numeric_limits<float>::quiet_NaN());
  g.kv("t.inf", gguf_builder::f64, std::numeric_limits<double>::infinity());
  g.kv_array<float>("t.floats", gguf_builder::f32, {1.0f, -2.0f, 0.5f});
  g.kv_array<std::int32_t>("t.ints", gguf_builder::i32, {-1, 0, 7});
  g.kv_array<std::uint8_t>("t.bools", gguf_builder::boolean, {1, 0, 1});
  g.kv_str_array("t.strings", {"a", "", "日本"});
  // array of (array of u16): [[1, 2], [3]]
  gf_test::bytes nested;
  gguf_builder::put<std::uint32_t>(nested, gguf_builder::array);
  gguf_builder::put<std::uint64_t>(nested, 2);
  for (const std::vector<std::uint16_t>& inner : {std::vector<std::uint16_t>{1, 2}, std::vector<std::uint16_t>{3}}) {
    gguf_builder::put<std::uint32_t>(nested, gguf_builder::u16);
    gguf_builder::put<std::uint64_t>(nested, inner.size());
    for (auto x : inner) gguf_builder::put<std::uint16_t>(nested, x);
  }
  g.kv_raw("t.nested", gguf_builder::array, nested);
  g.kv_array<float>("t.empty", gguf_builder::f32, {});
  g.add_tensor({"a", {4, 2}, 0, gf_test::bytes(32, std::byte{1})});
  g.add_tensor({"b", {64}, 8, gf_test::bytes(68, std::byte{2})});  // q8_0: 2 blocks of 34 B
  g.add_tensor({"c", {256, 1}, 12, gf_test::bytes(144, std::byte{3})});
  return g.build();
}

}  // namespace

TEST_CASE("gguf: all 13 value types and nested arrays parse", "[cpu][io]") {
  const auto b = all_types_file();
  const auto f = parse(b);
  CHECK(f.version() == 3);
  CHECK(f.alignment() == 32);
  CHECK(f.metadata().size() == 20);
  CHECK(f.get_u32("t.u8") == 200);
  CHECK(f.get_i32("t.i8") == -100);
  CHECK(f.get_u32("t.u16") == 60000);
  CHECK(f.get_i32("t.i16") == -30000);
  CHECK(f.get_u32("t.u32") == 4000000000u);
  CHECK(f.get_i64("t.i32") == -2000000000);
  CHECK(f.get_f32("t.f32") == 1.5f);
  CHECK(f.get_bool("t.bool"));
  CHECK(f.get_string("t.string") == "héllo ✓");
  CHECK(f.get_u64("t.u64") == (std::uint64_t(1) << 40));
  CHECK(f.get_i64("t.i64") == -(std::int64_t(1) << 40));
  CHECK(f.get_f64("t.f64") == 2.25);
  CHECK(f.get_f64("t.u32") == 4e9);  // integers convert to floats
  CHECK(f.get_array<float>("t.floats") == std::vector<float>{1.0f, -2.0f, 0.5f});
  CHECK(f.get_array<std::int64_t>("t.ints") == std::vector<std::int64_t>{-1, 0, 7});
  CHECK(f.get_array<double>("t.ints") == std::vector<double>{-1, 0, 7});
  CHECK(f.get_array<bool>("t.bools") == std::vector<bool>{true, false, true});
  CHECK(f.get_array<std::string>("t.strings") == std::vector<std::string>{"a", "", "日本"});
  CHECK(f.get_array<float>("t.empty").empty());
  const gf::gguf_value& n = f.at("t.nested");
  REQUIRE(n.is_array());
  CHECK(n.element_type() == gf::gguf_type::array);
  REQUIRE(n.arrays().size() == 2);
  CHECK(n.arrays()[0].size() == 2);
  CHECK(n.arrays()[0].element<int>(1) == 2);
  CHECK(n.arrays()[1].element<int>(0) == 3);
  CHECK(n.type_name() == "array of array of u16");

  REQUIRE(f.tensors().size() == 3);
  const gf::gguf_tensor* a = f.find_tensor("a");
  REQUIRE(a);
  CHECK(a->format == gf::tensor_format::f32);
  CHECK(a->n_elements == 8);
  CHECK(a->n_bytes == 32);
  CHECK(a->shape_string() == "[4, 2]");
  CHECK(a->data == b.data() + f.data_offset() + a->offset);
  CHECK(f.data_offset() % 32 == 0);
  CHECK(f.find_tensor("b")->format == gf::tensor_format::q8_0);
  CHECK(f.find_tensor("b")->n_bytes == 68);
  CHECK(std::to_integer<int>(f.find_tensor("b")->data[0]) == 2);
  CHECK(f.find_tensor("c")->format == gf::tensor_format::q4_k);
  CHECK(f.find_tensor("c")->offset % 32 == 0);
  CHECK(f.find_tensor("nope") == nullptr);
}

TEST_CASE("gguf: typed getters name the key and both types on misuse", "[cpu][io]") {
  const auto b = all_types_file();
  const auto f = parse(b);
  auto [c1, m1] = error_of([&] { (void)f.get_u32("missing.key"); });
  CHECK(c1 == gf::errc::format);
  CHECK(m1 == "test.gguf: metadata key 'missing.key' is missing");
  auto [c2, m2] = error_of([&] { (void)f.get_u32("t.string"); });
  CHECK(m2 == "test.gguf: metadata key 't.string' has type string, expected an unsigned integer");
  auto [c3, m3] = error_of([&] { (void)f.get_u32("t.i8"); });
  CHECK(m3 == "test.gguf: metadata key 't.i8' = -100 is out of range for u32");
  auto [c4, m4] = error_of([&] { (void)f.get_f32("t.nan"); });
  CHECK(m4 == "test.gguf: metadata key 't.nan' is NaN, expected a number");
  auto [c5, m5] = error_of([&] { (void)f.get_f64("t.inf"); });
  CHECK(m5 == "test.gguf: metadata key 't.inf' is infinite, expected a finite number");
  auto [c6, m6] = error_of([&] { (void)f.get_string("t.floats"); });
  CHECK(m6 == "test.gguf: metadata key 't.floats' has type array of f32, expected string");
  auto [c7, m7] = error_of([&] { (void)f.get_array<std::string_view>("t.floats"); });
  CHECK(m7 == "test.gguf: metadata key 't.floats' has type array of f32, expected array of string");
  auto [c8, m8] = error_of([&] { (void)f.get_array<std::uint8_t>("t.ints"); });
  CHECK(m8 == "test.gguf: metadata key 't.ints': element 0 is out of range");
  auto [c9, m9] = error_of([&] { (void)f.get_bool("t.u8"); });
  CHECK(m9 == "test.gguf: metadata key 't.u8' has type u8, expected bool");
  CHECK(!f.find_u32("absent"));
  CHECK(f.find_u32("t.u16") == 60000u);
  CHECK(f.find_string("t.string") == "héllo ✓");
}

TEST_CASE("gguf: general.alignment moves the data section", "[cpu][io]") {
  gguf_builder g;
  g.alignment = 64;
  g.kv_u32("general.alignment", 64);
  g.add_tensor({"x", {16}, 0, gf_test::bytes(64, std::byte{9})});
  g.add_tensor({"y", {3}, 0, gf_test::bytes(12, std::byte{8})});
  const auto b = g.build();
  const auto f = parse(b);
  CHECK(f.alignment() == 64);
  CHECK(f.data_offset() % 64 == 0);
  CHECK(f.find_tensor("y")->offset == 64);
}

TEST_CASE("gguf: version 2 files parse like version 3", "[cpu][io]") {
  gguf_builder g;
  g.version = 2;
  g.kv_str("general.architecture", "gemma");
  const auto b = g.build();
  CHECK(parse(b).version() == 2);
}

TEST_CASE("utf8: validation and maximal-subpart repair", "[cpu][io][tokenizer]") {
  CHECK(gf::is_valid_utf8("plain ascii"));
  CHECK(gf::is_valid_utf8("日本語 🤗 é"));
  CHECK(gf::is_valid_utf8(""));
  CHECK(!gf::is_valid_utf8("\xff"));
  CHECK(!gf::is_valid_utf8("\xc0\xaf"));          // overlong
  CHECK(!gf::is_valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK(!gf::is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  CHECK(!gf::is_valid_utf8("\xe2\x82"));          // truncated
  CHECK(gf::utf8_first_invalid("ab\xffzz") == 2);
  const std::string r = "\xEF\xBF\xBD";
  CHECK(gf::repair_utf8("a\xff" "b") == "a" + r + "b");
  CHECK(gf::repair_utf8("\xe2\x82") == r);                    // one subpart
  CHECK(gf::repair_utf8("\xe2\x82" "c") == r + "c");
  CHECK(gf::repair_utf8("\xc0\xaf") == r + r);                // C0 is never valid: two
  CHECK(gf::repair_utf8("\xed\xa0\x80") == r + r + r);        // Python gives three as well
  CHECK(gf::repair_utf8("\xf0\x9f\xa4") == r);
  CHECK(gf::repair_utf8("ok") == "ok");
  CHECK(gf::quote_for_message("a\x01'b") == "'a\\x01\\x27b'");
}

TEST_CASE("gguf: the real Gemma 3 270M file", "[io][model]") {
  const auto f = gf::gguf_file::open(gf_test::model_path());
  CHECK(f.version() == 3);
  CHECK(f.get_string("general.architecture") == "gemma3");
  CHECK(f.get_u32("gemma3.block_count") == 18);
  CHECK(f.get_u32("gemma3.embedding_length") == 640);
  CHECK(f.get_u32("gemma3.attention.sliding_window") == 512);
  CHECK(f.get_f32("gemma3.rope.freq_base") == 1e6f);
  CHECK(f.get_string("tokenizer.ggml.model") == "llama");
  CHECK(f.get_array<std::string_view>("tokenizer.ggml.tokens").size() == 262144);
  CHECK(f.get_array<float>("tokenizer.ggml.scores").size() == 262144);
  CHECK(f.get_bool("tokenizer.ggml.add_bos_token"));
  CHECK(!f.get_bool("tokenizer.ggml.add_space_prefix"));
  CHECK(f.tensors().size() == 236);
  std::map<gf::tensor_format, int> counts;
  for (const auto& t : f.tensors()) {
    REQUIRE(t.format);
    counts[*t.format]++;
    CHECK(t.offset % f.alignment() == 0);
  }
  CHECK(counts[gf::tensor_format::f32] == 109);
  CHECK(counts[gf::tensor_format::q5_0] == 81);
  CHECK(counts[gf::tensor_format::q4_k] == 27);
  CHECK(counts[gf::tensor_format::q8_0] == 10);
  CHECK(counts[gf::tensor_format::q6_k] == 9);
  const gf::gguf_tensor* e = f.find_tensor("token_embd.weight");
  REQUIRE(e);
  CHECK(e->format == gf::tensor_format::q8_0);
  CHECK(e->dims[0] == 640);
  CHECK(e->dims[1] == 262144);
  CHECK(f.find_tensor("output.weight") == nullptr);  // tied head
}
