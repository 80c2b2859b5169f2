// libFuzzer target: safetensors header parsing (first byte even) and config.json parsing (odd).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <gemmaforge/io/hf_config.hpp>
#include <gemmaforge/io/safetensors.hpp>

namespace gf = gemmaforge;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  try {
    if (data[0] % 2 == 0) {
      const auto f = gf::safetensors_file::parse(rest, "fuzz.safetensors");
      for (const auto& t : f.tensors()) {
        (void)t.shape_string();
        // The parser promised the range is inside the buffer: touch its ends.
        if (t.end > t.begin) {
          volatile std::byte first = t.data[0];
          volatile std::byte last = t.data[t.end - t.begin - 1];
          (void)first;
          (void)last;
        }
      }
    } else {
      const auto c = gf::hf_config::parse(std::string_view(reinterpret_cast<const char*>(rest.data()), rest.size()), "config.json");
      (void)c.layer_types.size();
    }
  } catch (const gf::error&) {
  }
  return 0;
}
