#pragma once
// Stop strings over streamed text. Text is released only when it can no longer be the start of a
// stop string, so a streaming client never sees part of a stop string that later completes, and
// the final output excludes the stop string (OpenAI semantics).
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace gemmaforge {

class stop_matcher {
 public:
  explicit stop_matcher(const std::vector<std::string>* stops = nullptr) : stops_(stops) {}

  // Feed newly decoded text; returns the text that is now safe to emit. After a stop string is
  // found, stopped() is true and the text before it has been returned.
  std::string feed(std::string_view text) {
    if (stopped_) return {};
    pending_.append(text);
    if (!stops_ || stops_->empty()) {
      std::string out;
      out.swap(pending_);
      return out;
    }
    // Earliest complete stop string wins.
    std::size_t first = std::string::npos;
    for (const auto& s : *stops_) first = std::min(first, pending_.find(s));
    if (first != std::string::npos) {
      stopped_ = true;
      std::string out = pending_.substr(0, first);
      pending_.clear();
      return out;
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
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
  }

  // End of generation without a stop string: whatever was held back is real output.
  std::string flush() {
    std::string out;
    if (!stopped_) out.swap(pending_);
    return out;
  }

  bool stopped() const { return stopped_; }

 private:
  const std::vector<std::string>* stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace gemmaforge
