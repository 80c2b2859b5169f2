// libFuzzer target: chat template rendering. The input is split at 0x00 bytes into messages; the
// first byte picks the template, the options and each message's role. Rendering either succeeds
// or throws gf::error(errc::invalid_argument); successful output must contain every user message's
// content (trimmed for Gemma) and end with the generation prompt when asked for.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/tokenizer/chat_template.hpp>

namespace gf = gemmaforge;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t ctl = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const char* roles[] = {"user", "assistant", "system", "model", "tool"};
  std::vector<gf::chat_message> msgs;
  std::size_t start = 0, k = 0;
  for (std::size_t i = 0; i <= rest.size(); ++i) {
    if (i == rest.size() || rest[i] == '\0') {
      // Mostly well-formed alternation, sometimes another role.
      const bool odd_role = ((ctl >> 4) & 3) == 3 && k == 1;
      const char* role = odd_role ? roles[(ctl >> 6) % 5] : (k == 0 && (ctl & 8) ? "system" : roles[(k + ((ctl & 8) ? 1 : 0)) % 2]);
      msgs.push_back({role, std::string(rest.substr(start, i - start))});
      start = i + 1;
      ++k;
    }
  }
  const auto kind = (ctl & 1) ? gf::chat_template::openchat : gf::chat_template::gemma;
  const gf::chat_options o{.add_generation_prompt = (ctl & 2) != 0, .add_bos = (ctl & 4) != 0};
  try {
    const std::string out = gf::render_chat(kind, msgs, o);
    if (o.add_bos && out.rfind("<bos>", 0) != 0) __builtin_trap();
    const std::string_view gen = kind == gf::chat_template::gemma ? "<start_of_turn>model\n" : "GPT4 Correct Assistant:";
    if (o.add_generation_prompt && (out.size() < gen.size() || out.compare(out.size() - gen.size(), gen.size(), gen) != 0))
      __builtin_trap();
    for (const auto& m : msgs) {
      if (m.role != "user") continue;
      const std::string c = kind == gf::chat_template::gemma ? gf::detail::py_strip(m.content) : m.content;
      if (out.find(c) == std::string::npos) __builtin_trap();
    }
  } catch (const gf::error& e) {
    if (e.code() != gf::errc::invalid_argument) __builtin_trap();
  }
  return 0;
}
