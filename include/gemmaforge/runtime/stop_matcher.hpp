#pragma once
// Stop strings over streamed text. Text is released only when it can no longer be the start of a
// stop string, so a streaming client never sees part of a stop string that later completes, and
// the final output excludes the stop string (OpenAI semantics). Released text is appended to the
// caller's string; the held-back buffer is reserved up front, so feeding allocates nothing.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace gemmaforge {

class stop_matcher {
 public:
  explicit stop_matcher(const std::vector<std::string>* stops = nullptr) : stops_(stops) {
    std::size_t longest = 0;
    if (stops_)
      for (const auto& s : *stops_) longest = std::max(longest, s.size());
    pending_.reserve(2 * longest + 256);  // held-back text + one token's bytes
  }

  // Feed newly decoded text; appends what is now safe to emit to `out`. After a stop string is
  // found, stopped() is true and only the text before it was appended.
  void feed(std::string_view text, std::string& out) {
    if (stopped_) return;
    if (!stops_ || stops_->empty()) {
      out.append(text);
      return;
    }
    pending_.append(text);
    // Earliest complete stop string wins.
    std::size_t first = std::string::npos;
    for (const auto& s : *stops_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
      stopped_ = true;
      out.append(pending_, 0, first);
      pending_.clear();
      return;
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    std::size_t hold = 0;
    for (const auto& s : *stops_) {
      const std::size_t max_len = std::min(s.size() - 1, pending_.size());
      for (std::size_t len = max_len; len > hold; --len)
        if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(s).substr(0, len)) {
          hold = len;
          break;
        }
    }
    out.append(pending_, 0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
  }

  // End of generation without a stop string: whatever was held back is real output.
  void flush(std::string& out) {
    if (!stopped_) out.append(pending_);
    pending_.clear();
  }

  bool stopped() const { return stopped_; }

 private:
  const std::vector<std::string>* stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace gemmaforge
