#pragma once
// Streaming one request to its client as server-sent events.
//
// Two threads meet here. The engine thread calls the request's on_token callback once per token
// for every running sequence in a step: it must never wait for a client, or one slow reader would
// stall the whole batch. So the callback only appends the text to this request's token_channel
// (a mutex held for a string append), pokes the connection (exchange::notify) and returns. The
// transport's I/O thread then pulls the events (pull(), never blocking) and writes them; a slow
// client only delays its own writes, and a stream waiting in the engine's queue holds no thread.
//
// A client that goes away is noticed by the transport: a failed or timed-out write, or, while no
// tokens arrive (the request is still queued or prefilling), the EOF its socket watcher reads.
// Either way client_gone() cancels the request and the engine frees its KV blocks at its next step.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <vector>

#include <gemmaforge/runtime/request.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

#include "logprobs_json.hpp"
#include "openai_response.hpp"
#include "tool_calls.hpp"

namespace gemmaforge::serve {

class token_channel {
 public:
  // logprobs >= 0: keep each token's log-probabilities and that many alternatives.
  explicit token_channel(std::int32_t logprobs = -1) : logprobs_(logprobs), pending_lp_(std::max(logprobs, 0)) {}
  // Engine thread.
  void push(const token_event& e);

  struct batch {
    std::string text;              // everything produced since the last take
    std::int32_t tokens = 0;       // tokens produced so far (all takes)
    bool finished = false;
    finish_reason reason = finish_reason::none;
    logprob_log logprobs;          // the tokens since the last take (when asked)
  };
  // I/O thread: take what is there. False when nothing arrived.
  bool take(batch& out);

 private:
  std::int32_t logprobs_ = -1;
  std::mutex mutex_;
  std::string pending_;
  logprob_log pending_lp_;
  std::int32_t tokens_ = 0;
  bool finished_ = false;
  finish_reason reason_ = finish_reason::none;
};

// How a stream ended, for the access log and the metrics.
struct stream_outcome {
  enum class kind { completed, client_gone, cancelled, failed } how = kind::completed;
  finish_reason reason = finish_reason::none;
  usage_counts usage;
  std::string detail;   // error message (failed) or why it was cancelled
};

// One streamed choice (n > 1 streams several, each chunk naming its index).
struct stream_choice {
  request_handle handle;
  std::shared_ptr<token_channel> channel;
  bool finished = false;
  bool echoed = false;
  std::int32_t tokens_seen = 0;
  std::size_t text_offset = 0;  // completions' logprobs: bytes of this choice's text already sent
};

struct stream_options {
  bool include_usage = false;
  bool logprobs = false;             // chunks carry their tokens' logprobs
  const tokenizer* tok = nullptr;    // for logprobs' token text
  std::string echo;                  // completions' echo: the prompt text, first chunk of each choice
  const logprob_log* echo_logprobs = nullptr;  // with echo + logprobs: the prompt's
};

class sse_stream {
 public:
  sse_stream(response_meta meta, request_handle handle, std::shared_ptr<token_channel> channel, bool include_usage,
             std::function<void(const stream_outcome&)> on_end);
  sse_stream(response_meta meta, std::vector<stream_choice> choices, stream_options o, std::function<void(const stream_outcome&)> on_end);
  ~sse_stream();  // cancels the request if the stream ended before it did
  sse_stream(const sse_stream&) = delete;
  sse_stream& operator=(const sse_stream&) = delete;

  // The transport's pull (exchange::start_stream): the events ready now, and whether the stream
  // is complete. On an I/O thread, never blocking.
  std::string pull(bool& last);
  // The transport saw the client go (EOF, reset, a write that failed or timed out).
  void client_gone();
  // A request with tools: its text goes through the tool_stream (content, then tool_calls deltas).
  void set_tools(std::shared_ptr<tool_stream> t) { tools_ = std::move(t); }

 private:
  void end(stream_outcome o);

  void cancel_all();
  usage_counts usage() const;

  response_meta meta_;
  std::vector<stream_choice> choices_;
  stream_options opts_;
  std::function<void(const stream_outcome&)> on_end_;
  std::shared_ptr<tool_stream> tools_;
  bool started_ = false, ended_ = false;
};

}  // namespace gemmaforge::serve
