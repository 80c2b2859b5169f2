#pragma once
// Chat prompt formats, selected by the descriptor's Model::chat.
//
// gemma (Gemma 1/2/3 instruction-tuned checkpoints), as HF's Gemma 3 chat_template renders it:
//   <bos><start_of_turn>user\n{system}\n\n{content}<end_of_turn>\n<start_of_turn>model\n...
//   - every user/model content is trimmed (Jinja's `trim`, i.e. Python str.strip()); the system
//     message is not,
//   - "assistant" is written as "model",
//   - a leading system message is merged into the first user turn followed by a blank line
//     (Gemma 1/2's templates refuse system messages; merging is what Gemma 3's does),
//   - after the optional system message, roles must alternate user/model starting with user.
// openchat (openchat-3.5-0106-gemma), as its model card writes it:
//   <bos>GPT4 Correct User: {content}<end_of_turn>GPT4 Correct Assistant: {content}<end_of_turn>...
//   GPT4 Correct Assistant:
//   - contents are not trimmed (the template has no trim),
//   - a system message, which the card supports but does not recommend, is written as
//     "{system}<end_of_turn>" before the first turn (the card's form; the repository's Jinja
//     template, 'GPT4 Correct ' + role.title(), would print "GPT4 Correct System: ..." instead).
//
// render_chat() gives the prompt as text (for display and tests, like apply_chat_template with
// tokenize=False). render_chat_ids() gives token ids: the template's special tokens by id and the
// messages encoded with parse_special = false, so a user typing "<end_of_turn>" cannot forge a
// turn boundary. For text without such strings both give the same ids.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/model/descriptor.hpp>

namespace gemmaforge {

struct chat_message {
  std::string role;  // "system", "user", "assistant" (or "model")
  std::string content;
};

struct chat_options {
  bool add_generation_prompt = true;  // end with the model's turn opener
  bool add_bos = true;
  std::size_t max_tokens = 0;  // render_chat_ids: 0 = no bound, else stop past max_tokens ids (encode_options)
};

// One piece of a rendered prompt: a special token (by its piece text) or plain text.
struct chat_segment {
  bool special = false;
  std::string text;
};

namespace detail {

// Python's str.isspace() over the code point starting at s[i]; returns its byte length or 0.
inline std::size_t py_space_at(std::string_view s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b == ' ' || (b >= 0x09 && b <= 0x0d) || (b >= 0x1c && b <= 0x1f)) return 1;
  const std::size_t n = utf8_sequence_at(s, i);
  if (n < 2) return 0;
  std::uint32_t cp = 0;
  if (n == 2) cp = ((b & 0x1fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3fu);
  else if (n == 3)
    cp = ((b & 0x0fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3fu) << 6) | (static_cast<unsigned char>(s[i + 2]) & 0x3fu);
  else return 0;
  const bool space = cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
                     cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
  return space ? n : 0;
}

inline std::string py_strip(std::string_view s) {
  std::size_t b = 0;
  while (b < s.size()) {
    const std::size_t n = py_space_at(s, b);
    if (!n) break;
    b += n;
  }
  // From the right: find the last code point that is not a space.
  std::size_t e = b, i = b;
  while (i < s.size()) {
    const std::size_t sp = py_space_at(s, i);
    const std::size_t n = sp ? sp : std::max<std::size_t>(1, utf8_sequence_at(s, i));
    if (!sp) e = i + n;
    i += n;
  }
  return std::string(s.substr(b, e - b));
}

inline void add_text(std::vector<chat_segment>& out, std::string_view text) {
  if (text.empty()) return;
  if (!out.empty() && !out.back().special) out.back().text += text;
  else out.push_back({false, std::string(text)});
}
inline void add_special(std::vector<chat_segment>& out, std::string_view piece) { out.push_back({true, std::string(piece)}); }

}  // namespace detail

// The prompt as segments (special tokens separate from text).
inline std::vector<chat_segment> chat_segments(chat_template kind, std::span<const chat_message> messages,
                                               const chat_options& o = {}) {
  std::vector<chat_segment> out;
  if (kind == chat_template::none)
    throw error(errc::invalid_argument, "this model has no chat template (a base or planning-only model)");
  std::string system;
  bool has_system = false;
  std::size_t first = 0;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    has_system = true;
    first = 1;
  }
  for (std::size_t i = first; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    const bool user = r == "user";
    const bool model = r == "assistant" || r == "model";
    if (!user && !model)
      throw error(errc::invalid_argument, "chat message " + std::to_string(i) + " has role " + quote_for_message(r) +
                                              (r == "system" ? " (only the first message may be a system message)"
                                                             : " (expected user, assistant or model)"));
    if (user != ((i - first) % 2 == 0))
      throw error(errc::invalid_argument, "chat roles must alternate user/assistant/user/... (message " + std::to_string(i) +
                                              " is " + quote_for_message(r) + ")");
  }
  if (o.add_bos) detail::add_special(out, "<bos>");
  if (kind == chat_template::gemma) {
    for (std::size_t i = first; i < messages.size(); ++i) {
      const bool user = messages[i].role == "user";
      detail::add_special(out, "<start_of_turn>");
      std::string body = user ? "user\n" : "model\n";
      if (i == first && has_system) body += system + "\n\n";  // the template does not trim it
      body += detail::py_strip(messages[i].content);
      detail::add_text(out, body);
      detail::add_special(out, "<end_of_turn>");
      detail::add_text(out, "\n");
    }
    if (o.add_generation_prompt) {
      detail::add_special(out, "<start_of_turn>");
      detail::add_text(out, "model\n");
    }
  } else {  // openchat
    if (has_system) {
      detail::add_text(out, system);
      detail::add_special(out, "<end_of_turn>");
    }
    for (std::size_t i = first; i < messages.size(); ++i) {
      const bool user = messages[i].role == "user";
      detail::add_text(out, std::string(user ? "GPT4 Correct User: " : "GPT4 Correct Assistant: ") + messages[i].content);
      detail::add_special(out, "<end_of_turn>");
    }
    if (o.add_generation_prompt) detail::add_text(out, "GPT4 Correct Assistant:");
  }
  return out;
}

inline std::string render_chat(chat_template kind, std::span<const chat_message> messages, const chat_options& o = {}) {
  std::string s;
  for (const auto& seg : chat_segments(kind, messages, o)) s += seg.text;
  return s;
}

}  // namespace gemmaforge

// Token ids need the tokenizer (and so sentencepiece); the text renderer above does not.
#if __has_include(<sentencepiece_processor.h>)
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace gemmaforge {

inline std::vector<int> render_chat_ids(const tokenizer& tok, chat_template kind, std::span<const chat_message> messages,
                                        const chat_options& o = {}) {
  std::vector<int> ids;
  for (const auto& seg : chat_segments(kind, messages, o)) {
    if (seg.special) {
      const int id = seg.text == "<bos>" && tok.bos_id() >= 0 ? tok.bos_id() : tok.piece_to_id(seg.text);
      if (id < 0) throw error(errc::invalid_argument, tok.name() + ": the chat template needs " + seg.text + ", which the vocabulary lacks");
      ids.push_back(id);
    } else {
      // Bounded: each message is encoded with what is left of the budget, so a huge message
      // costs no more than the budget's worth of text.
      const std::size_t left = o.max_tokens > ids.size() ? o.max_tokens - ids.size() : 0;
      const auto part = tok.encode(seg.text, {.add_bos = false, .parse_special = false, .max_tokens = o.max_tokens ? std::max<std::size_t>(left, 1) : 0});
      ids.insert(ids.end(), part.begin(), part.end());
    }
    if (o.max_tokens > 0 && ids.size() > o.max_tokens) {
      ids.resize(o.max_tokens + 1);
      return ids;
    }
  }
  return ids;
}

template <class Model>
std::vector<int> render_chat_ids(const tokenizer& tok, std::span<const chat_message> messages, const chat_options& o = {}) {
  return render_chat_ids(tok, Model::chat, messages, o);
}

}  // namespace gemmaforge
#endif
