#pragma once
// Server metrics in Prometheus' text format (GET /metrics): HTTP requests by endpoint and status,
// the engine's counters (tokens, queue, running, KV blocks) and a generation rate.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <gemmaforge/runtime/engine.hpp>

namespace gemmaforge::serve {

// The endpoint label of a request path: the known routes, else "other" (a label per unknown path
// would let any client grow the metric without bound).
std::string_view endpoint_label(std::string_view path);

class server_metrics {
 public:
  void count_request(std::string_view endpoint, int status);
  void count_stream_end(bool client_gone);

  // Called about once a second with the engine's generated-token counter; the rate is taken over
  // the last `window` of samples.
  void sample(std::uint64_t generated_tokens);
  double tokens_per_second() const;

  // The engine's statistics `s` are null while the model loads.
  std::string render(const engine_stats* s, bool draining = false) const;

  static constexpr std::chrono::seconds window{10};

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::uint64_t streams_completed_ = 0, streams_client_gone_ = 0;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> samples_;
};

}  // namespace gemmaforge::serve
