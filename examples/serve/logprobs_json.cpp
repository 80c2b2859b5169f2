#include "logprobs_json.hpp"

#include <algorithm>
#include <cmath>

namespace gemmaforge::serve {

using ojson = nlohmann::ordered_json;

void logprob_log::append(std::int32_t token, const token_logprobs& lp) {
  ids_.push_back(token);
  lps_.push_back(lp.logprob);
  const std::int32_t n = std::min(lp.n_top, k_);
  n_top_.push_back(n);
  for (std::int32_t j = 0; j < k_; ++j) {
    top_ids_.push_back(j < n ? lp.top_ids[j] : -1);
    top_lps_.push_back(j < n ? lp.top_logprobs[j] : 0.0f);
  }
}

void logprob_log::append_unscored(std::int32_t token) {
  ids_.push_back(token);
  lps_.push_back(std::numeric_limits<float>::quiet_NaN());
  n_top_.push_back(0);
  for (std::int32_t j = 0; j < k_; ++j) {
    top_ids_.push_back(-1);
    top_lps_.push_back(0.0f);
  }
}

double logprob_log::cumulative() const {
  double s = 0.0;
  for (float v : lps_)
    if (!std::isnan(v)) s += double(v);
  return s;
}

namespace {

// What a token stands for, as text: its bytes (control tokens: their piece, "<end_of_turn>").
std::string_view token_bytes(const tokenizer& tok, std::int32_t id) { return tok.token_bytes(id, false); }

// The token as a JSON string: bytes that are not valid UTF-8 on their own (a byte-fallback piece
// of a multi-byte character) are shown as U+FFFD; "bytes" keeps them exact.
std::string token_string(const tokenizer& tok, std::int32_t id) {
  const std::string_view b = token_bytes(tok, id);
  return is_valid_utf8(b) ? std::string(b) : repair_utf8(b);
}

ojson bytes_json(const tokenizer& tok, std::int32_t id) {
  ojson a = ojson::array();
  for (char c : token_bytes(tok, id)) a.push_back(int(static_cast<unsigned char>(c)));
  return a;
}

// -inf (a banned token) is not JSON: OpenAI's floor for "impossible" is -9999.0.
ojson logprob_value(float v) {
  if (std::isnan(v)) return nullptr;
  return std::isfinite(v) ? double(v) : -9999.0;
}

}  // namespace

ojson chat_logprobs_json(const logprob_log& log, std::size_t begin, std::size_t end, const tokenizer& tok) {
  ojson content = ojson::array();
  for (std::size_t i = begin; i < end && i < log.size(); ++i) {
    ojson e;
    e["token"] = token_string(tok, log.id(i));
    e["logprob"] = logprob_value(log.logprob(i));
    e["bytes"] = bytes_json(tok, log.id(i));
    ojson top = ojson::array();
    for (std::int32_t j = 0; j < log.n_top(i); ++j) {
      ojson t;
      t["token"] = token_string(tok, log.top_id(i, j));
      t["logprob"] = logprob_value(log.top_logprob(i, j));
      t["bytes"] = bytes_json(tok, log.top_id(i, j));
      top.push_back(std::move(t));
    }
    e["top_logprobs"] = std::move(top);
    content.push_back(std::move(e));
  }
  ojson j;
  j["content"] = std::move(content);
  j["refusal"] = nullptr;
  return j;
}

ojson completion_logprobs_json(const logprob_log* prompt, const logprob_log& log, std::size_t begin, std::size_t end,
                               const tokenizer& tok, std::size_t offset) {
  ojson tokens = ojson::array(), lps = ojson::array(), tops = ojson::array(), offsets = ojson::array();
  auto add = [&](const logprob_log& l, std::size_t i) {
    tokens.push_back(token_string(tok, l.id(i)));
    lps.push_back(logprob_value(l.logprob(i)));
    if (std::isnan(l.logprob(i))) {
      tops.push_back(nullptr);
    } else {
      ojson t = ojson::object();
      // Several ids can show as the same text (U+FFFD): the most likely one is kept, as OpenAI's map does.
      for (std::int32_t j = 0; j < l.n_top(i); ++j) {
        const std::string s = token_string(tok, l.top_id(i, j));
        if (!t.contains(s)) t[s] = logprob_value(l.top_logprob(i, j));
      }
      tops.push_back(std::move(t));
    }
    offsets.push_back(offset);
    offset += token_bytes(tok, l.id(i)).size();
  };
  if (prompt)
    for (std::size_t i = 0; i < prompt->size(); ++i) add(*prompt, i);
  for (std::size_t i = begin; i < end && i < log.size(); ++i) add(log, i);
  ojson j;
  j["tokens"] = std::move(tokens);
  j["token_logprobs"] = std::move(lps);
  j["top_logprobs"] = std::move(tops);
  j["text_offset"] = std::move(offsets);
  return j;
}

}  // namespace gemmaforge::serve
