#pragma once
// openai_server: the HTTP face of one program_engine. Routes, authentication, the access log,
// the in-flight registry that graceful shutdown drains, and the metrics sampler.
//
// Lifecycle (main.cpp drives it): install() on a bound httplib::Server, which starts answering
// at once (GET /health says "loading", the API says 503); set_engine() when the model is loaded;
// on SIGTERM begin_drain() (new generation requests get 503), wait_idle() for the in-flight
// ones, cancel_all() after the timeout, then stop the HTTP server and the engine.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "metrics.hpp"
#include "openai_request.hpp"
#include "program_engine.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace gemmaforge::serve {

struct server_options {
  std::string api_key;               // empty = no authentication
  std::string model_alias;           // the id /v1/models lists; empty = the registry name
  std::size_t max_body_bytes = 4u << 20;
  int http_threads = 64;             // concurrent connections served (each stream holds one)
};

class openai_server {
 public:
  explicit openai_server(server_options o);
  ~openai_server();
  openai_server(const openai_server&) = delete;
  openai_server& operator=(const openai_server&) = delete;

  void install(httplib::Server& svr);
  void set_engine(programs::program_engine* engine);
  const std::string& model_id() const { return model_id_; }

  void begin_drain();
  // True when no generation request is in flight (waited up to `timeout`).
  bool wait_idle(std::chrono::milliseconds timeout);
  std::size_t in_flight() const;
  std::size_t cancel_all();
  void stop_sampler();

 private:
  class inflight_guard;
  programs::program_engine& engine_or_503() const;
  void check_auth(const httplib::Request& req) const;
  void check_model(const std::string& requested) const;
  std::shared_ptr<inflight_guard> track(const request_handle& h);

  void handle_generate(api_kind kind, const httplib::Request& req, httplib::Response& res);
  generation_request build_request(const openai_request& r, programs::program_engine& eng) const;
  request_handle submit(programs::program_engine& eng, generation_request g);
  void handle_models(httplib::Response& res) const;
  void handle_health(httplib::Response& res) const;
  void handle_metrics(httplib::Response& res) const;

  server_options opts_;
  std::atomic<programs::program_engine*> engine_{nullptr};
  std::string model_id_;
  std::int64_t started_unix_ = 0;
  server_metrics metrics_;

  mutable std::mutex inflight_mutex_;
  std::condition_variable inflight_cv_;
  std::unordered_map<std::uint64_t, request_handle> inflight_;
  std::uint64_t next_inflight_ = 0;
  bool draining_ = false;

  std::mutex sampler_mutex_;
  std::condition_variable sampler_cv_;
  bool sampler_stop_ = false;
  std::thread sampler_;
};

}  // namespace gemmaforge::serve
