#pragma once
// openai_server: the application behind the HTTP transport (http_transport.hpp) for one
// program_engine. Routes, authentication, the access log, the work that turns a body into an
// engine request (on a small worker pool, off the I/O threads), the in-flight registry that
// graceful shutdown drains, and the metrics sampler.
//
// Lifecycle (main.cpp drives it): handlers() go to the transport, which starts answering at once
// (GET /health says "loading", the API says 503); set_engine() when the model is loaded; on SIGTERM
// begin_drain() (new generation requests get 503, /health 503), wait_idle() for the in-flight
// ones, cancel_all() after the timeout, then the transport closes every connection.
#include <atomic>
#include <optional>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <gemmaforge/grammar/token_trie.hpp>

#include "http_transport.hpp"
#include "logprobs_json.hpp"
#include "metrics.hpp"
#include "openai_request.hpp"
#include "openai_response.hpp"
#include "program_engine.hpp"

namespace gemmaforge::serve {

struct server_options {
  std::string api_key;               // empty = no authentication
  std::string model_alias;           // the id /v1/models lists; empty = the registry name
  int http_threads = 4;              // workers that parse and tokenize request bodies
};

class openai_server {
 public:
  explicit openai_server(server_options o);
  ~openai_server();
  openai_server(const openai_server&) = delete;
  openai_server& operator=(const openai_server&) = delete;

  transport_handlers handlers();
  void set_engine(programs::program_engine* engine);
  const std::string& model_id() const { return model_id_; }

  void begin_drain();
  // True when no generation request is in flight (waited up to `timeout`).
  bool wait_idle(std::chrono::milliseconds timeout);
  std::size_t in_flight() const;
  std::size_t cancel_all();
  void stop_sampler();
  void stop_workers();  // after the transport stopped: queued work is dropped

 private:
  class inflight_guard;
  // A non-streamed answer: its choices (n, or best_of of which n are returned) and what the token
  // callbacks collect for them (logprobs: one log per choice, written on the engine thread and
  // read once every choice is done).
  struct pending_answer {
    std::mutex mutex;
    std::shared_ptr<exchange> x;
    std::vector<request_handle> hs;
    std::shared_ptr<inflight_guard> guard;
    response_meta meta;
    std::int32_t finished = 0;       // choices whose final event came
    bool submitted = false;          // hs is set
    bool tools = false;              // the answer may be a tool call (tool_calls.hpp)
    std::atomic<bool> client_left{false};
    std::int32_t n = 1;              // choices returned (the best n of hs by cumulative logprob)
    bool logprobs = false;           // asked for (else logs only rank best_of)
    std::vector<logprob_log> logs;   // per choice
    std::string echo;                // completions' echo: the prompt text
    std::shared_ptr<logprob_log> prompt_log;  // echo + logprobs: the prompt's
  };
  void answer(pending_answer& st);
  programs::program_engine& engine_or_503() const;
  void check_auth(const http_request& req) const;
  void check_model(const std::string& requested) const;
  std::shared_ptr<inflight_guard> track(const request_handle& h);
  bool draining() const;

  std::optional<http_response> route(const http_request& req, access_record& a);
  void handle_generate(api_kind kind, const std::shared_ptr<exchange>& x);
  generation_request build_request(const openai_request& r, programs::program_engine& eng) const;
  request_handle submit(programs::program_engine& eng, generation_request g);
  // One request per choice (n or best_of), seeded per choice, submitted as a group when more than one.
  std::vector<request_handle> submit_choices(programs::program_engine& eng, const openai_request& r, const generation_request& g,
                                             const std::function<token_callback(std::int32_t)>& callback_for);
  void handle_tokenize(bool detokenize, const std::shared_ptr<exchange>& x);
  http_response handle_models() const;
  http_response handle_health() const;
  http_response handle_metrics() const;
  void log_request(const http_request& req, int status, access_record& a);
  void post_work(std::function<void()> f);

  server_options opts_;
  std::atomic<programs::program_engine*> engine_{nullptr};
  std::string model_id_;
  std::int64_t started_unix_ = 0;
  server_metrics metrics_;

  mutable std::mutex inflight_mutex_;
  std::condition_variable inflight_cv_;
  std::unordered_map<std::uint64_t, std::vector<request_handle>> inflight_;
  std::uint64_t next_inflight_ = 0;
  bool draining_ = false;

  // Longest input, in bytes, one token can stand for: a prompt longer than the context times this
  // cannot fit and is refused before it is tokenized.
  std::size_t max_token_bytes_ = 0;
  // The vocabulary as a byte trie for grammar-constrained decoding (grammar/token_trie.hpp),
  // built once in set_engine().
  std::shared_ptr<const grammar::token_trie> trie_;
  std::atomic<bool> trim_pending_{false};

  std::mutex work_mutex_;
  std::condition_variable work_cv_;
  std::deque<std::function<void()>> work_;
  bool work_stop_ = false;
  std::vector<std::thread> workers_;

  std::mutex sampler_mutex_;
  std::condition_variable sampler_cv_;
  bool sampler_stop_ = false;
  std::thread sampler_;
};

}  // namespace gemmaforge::serve
