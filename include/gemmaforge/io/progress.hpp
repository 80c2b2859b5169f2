#pragma once
// A one-line progress bar on stderr for the slow parts of loading a large model (prefaulting a
// multi-GB mapping, validating its tensors). Silent unless stderr is a terminal, so logs, CI
// output and piped runs stay clean. Redraws at most every 1% to keep the cost negligible.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include <gemmaforge/core/units.hpp>

namespace gemmaforge {

class progress_bar {
 public:
  // enabled = false forces silence; otherwise the bar shows only when stderr is a terminal.
  progress_bar(std::string label, std::uint64_t total, bool enabled = true)
      : label_(std::move(label)), total_(total), active_(enabled && total > 0 && ::isatty(STDERR_FILENO) == 1) {}
  progress_bar(const progress_bar&) = delete;
  progress_bar& operator=(const progress_bar&) = delete;
  ~progress_bar() { finish(); }

  bool active() const { return active_; }

  void update(std::uint64_t done) {
    if (!active_) return;
    const int permille = done >= total_ ? 1000 : int(done * 1000 / total_);
    if (permille / 10 == last_percent_) return;
    last_percent_ = permille / 10;
    constexpr int width = 30;
    const int filled = permille * width / 1000;
    std::string bar(std::size_t(filled), '#');
    bar.append(std::size_t(width - filled), '.');
    std::fprintf(stderr, "\r%s [%s] %3d%% of %s", label_.c_str(), bar.c_str(), last_percent_,
                 format_bytes(total_).c_str());
    std::fflush(stderr);
  }

  void finish() {
    if (!active_) return;
    update(total_);
    std::fputc('\n', stderr);
    active_ = false;
  }

 private:
  std::string label_;
  std::uint64_t total_;
  bool active_;
  int last_percent_ = -1;
};

}  // namespace gemmaforge
