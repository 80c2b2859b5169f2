// libFuzzer target: GGUF parser, typed getters, model facts, identification and binding.
// Any input must parse or throw gf::error; nothing else (a crash, a sanitizer report, another
// exception type) is acceptable.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/io/gguf.hpp>
#include <gemmaforge/io/weight_binding.hpp>

namespace gf = gemmaforge;

namespace {

void exercise_getters(const gf::gguf_file& f) {
  for (const auto& e : f.metadata()) {
    const gf::gguf_value& v = e.value;
    try {
      switch (v.type()) {
        case gf::gguf_type::string: (void)f.get_string(e.key); break;
        case gf::gguf_type::boolean: (void)f.get_bool(e.key); break;
        case gf::gguf_type::f32:
        case gf::gguf_type::f64: (void)f.get_f64(e.key); break;
        case gf::gguf_type::array:
          if (v.element_type() == gf::gguf_type::string) (void)f.get_array<std::string_view>(e.key);
          else if (v.element_type() == gf::gguf_type::boolean) (void)f.get_array<bool>(e.key);
          else if (v.element_type() != gf::gguf_type::array) {
            (void)f.get_array<double>(e.key);
            (void)f.get_array<std::int32_t>(e.key);
          }
          (void)v.type_name();
          break;
        default:
          (void)f.get_i64(e.key);
          (void)f.get_u32(e.key);
      }
    } catch (const gf::error&) {
    }
  }
  for (const auto& t : f.tensors()) (void)t.shape_string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const auto f = gf::gguf_file::parse(bytes, "fuzz.gguf");
    exercise_getters(f);
  } catch (const gf::error&) {
    return 0;
  }
  try {
    auto mf = gf::model_file::from_gguf_bytes(bytes, "fuzz.gguf");
    (void)mf->facts().summary();
    try {
      (void)gf::identify_model(*mf);
    } catch (const gf::error&) {
    }
    gf::for_each_type(gf::tiny_models{}, [&](auto tag) {
      try {
        const auto m = gf::bind_model<typename decltype(tag)::type>(mf);
        (void)m.summary().to_string();
      } catch (const gf::error&) {
      }
    });
  } catch (const gf::error&) {
  }
  return 0;
}
