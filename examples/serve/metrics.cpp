#include "metrics.hpp"

#include <cstdio>

namespace gemmaforge::serve {

std::string_view endpoint_label(std::string_view path) {
  for (std::string_view known : {"/v1/chat/completions", "/v1/completions", "/v1/models", "/tokenize", "/detokenize", "/health", "/livez", "/metrics"})
    if (path == known) return known;
  return "other";
}

void server_metrics::count_request(std::string_view endpoint, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(endpoint), status}];
}

void server_metrics::count_stream_end(bool client_gone) {
  std::lock_guard lock(mutex_);
  ++(client_gone ? streams_client_gone_ : streams_completed_);
}

void server_metrics::sample(std::uint64_t generated_tokens) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  samples_.emplace_back(now, generated_tokens);
  while (samples_.size() > 2 && now - samples_[1].first >= window) samples_.pop_front();
}

double server_metrics::tokens_per_second() const {
  std::lock_guard lock(mutex_);
  if (samples_.size() < 2) return 0.0;
  const double dt = std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
  return dt > 0 ? double(samples_.back().second - samples_.front().second) / dt : 0.0;
}

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void value(std::string& out, const char* name, double v, const std::string& labels = {}) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += buf;
  out += '\n';
}

void gauge(std::string& out, const char* name, const char* help, double v) {
  metric(out, name, "gauge", help);
  value(out, name, v);
}

void counter(std::string& out, const char* name, const char* help, double v) {
  metric(out, name, "counter", help);
  value(out, name, v);
}

}  // namespace

std::string server_metrics::render(const engine_stats* s, bool draining) const {
  const double rate = tokens_per_second();
  std::string out;
  out.reserve(4096);
  {
    std::lock_guard lock(mutex_);
    metric(out, "gemmaforge_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    for (const auto& [key, n] : requests_)
      value(out, "gemmaforge_http_requests_total", double(n),
            "endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"");
    metric(out, "gemmaforge_streams_total", "counter", "Streamed responses by outcome (client_gone: the client disconnected and the request was cancelled).");
    value(out, "gemmaforge_streams_total", double(streams_completed_), "outcome=\"completed\"");
    value(out, "gemmaforge_streams_total", double(streams_client_gone_), "outcome=\"client_gone\"");
  }
  gauge(out, "gemmaforge_ready", "1 while requests are served (0 while the model loads and while draining).", s && !draining ? 1 : 0);
  if (!s) return out;
  counter(out, "gemmaforge_requests_finished_total", "Generation requests the engine finished (any reason).", double(s->requests_finished));
  counter(out, "gemmaforge_requests_failed_total", "Generation requests that failed in the engine.", double(s->requests_failed));
  counter(out, "gemmaforge_requests_rejected_total", "Requests refused because the engine's queue was full (HTTP 429).", double(s->requests_rejected));
  counter(out, "gemmaforge_prompt_tokens_total", "Prompt tokens of admitted requests.", double(s->prompt_tokens));
  counter(out, "gemmaforge_prompt_tokens_cached_total", "Prompt tokens served from the prefix cache (not recomputed).", double(s->reused_prompt_tokens));
  counter(out, "gemmaforge_generation_tokens_total", "Tokens generated.", double(s->generated_tokens));
  counter(out, "gemmaforge_engine_steps_total", "Engine steps (forward passes).", double(s->steps));
  gauge(out, "gemmaforge_requests_running", "Requests in the running batch.", s->running);
  gauge(out, "gemmaforge_requests_waiting", "Requests queued for admission (waiting for a batch slot or KV blocks).", s->waiting);
  gauge(out, "gemmaforge_kv_blocks_total", "KV blocks in the pool.", s->kv_blocks_total);
  gauge(out, "gemmaforge_kv_blocks_used", "KV blocks held by running requests.", s->kv_blocks_used - s->kv_blocks_cached);
  gauge(out, "gemmaforge_kv_blocks_cached", "KV blocks held only by the prefix cache (given back on demand).", s->kv_blocks_cached);
  gauge(out, "gemmaforge_kv_blocks_free", "KV blocks not allocated.", s->kv_blocks_total - s->kv_blocks_used);
  gauge(out, "gemmaforge_kv_blocks_reserved", "Free KV blocks promised to running requests.", s->kv_blocks_reserved);
  gauge(out, "gemmaforge_generation_tokens_per_second", "Generated tokens per second over the last 10 s.", rate);
  // The model-server protocol of the Gateway API Inference Extension (the endpoint picker):
  // queued requests, running requests and KV-cache utilization in [0, 1], under vLLM's names,
  // which the picker reads by default.
  const double kv_usage = s->kv_blocks_total > 0 ? double(s->kv_blocks_used - s->kv_blocks_cached) / double(s->kv_blocks_total) : 0.0;
  gauge(out, "gemmaforge_kv_cache_usage_ratio", "Fraction of KV blocks held by requests (0..1; prefix-cache-only blocks count as free).", kv_usage);
  gauge(out, "vllm:num_requests_waiting", "Requests waiting to be admitted (gemmaforge_requests_waiting).", s->waiting);
  gauge(out, "vllm:num_requests_running", "Requests in the running batch (gemmaforge_requests_running).", s->running);
  gauge(out, "vllm:gpu_cache_usage_perc", "KV-cache utilization, 0..1 (gemmaforge_kv_cache_usage_ratio).", kv_usage);
  return out;
}

}  // namespace gemmaforge::serve
