#include "sse_stream.hpp"

#include <httplib.h>

namespace gemmaforge::serve {

void token_channel::push(const token_event& e) {
  {
    std::lock_guard lock(mutex_);
    if (e.finished) {
      finished_ = true;
      reason_ = e.reason;
    } else {
      pending_ += e.text;
      ++tokens_;
    }
  }
  cv_.notify_one();
}

bool token_channel::take(std::chrono::milliseconds timeout, batch& out) {
  std::unique_lock lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return finished_ || !pending_.empty(); })) return false;
  out.text.clear();
  out.text.swap(pending_);  // text arriving during the write goes to the other buffer
  out.tokens = tokens_;
  out.finished = finished_;
  out.reason = reason_;
  return true;
}

sse_stream::sse_stream(response_meta meta, request_handle handle, std::shared_ptr<token_channel> channel, bool include_usage,
                       std::function<void(const stream_outcome&)> on_end)
    : meta_(std::move(meta)), handle_(std::move(handle)), channel_(std::move(channel)), include_usage_(include_usage),
      on_end_(std::move(on_end)) {}

sse_stream::~sse_stream() {
  // The HTTP side is finished with this request (normally, or because cpp-httplib stopped calling
  // pump: a dead connection, a server stop). A request still running would waste the batch.
  if (handle_ && !handle_->done()) handle_->cancel();
}

bool sse_stream::write(httplib::DataSink& sink, const std::string& event) { return sink.write(event.data(), event.size()); }

bool sse_stream::client_gone() {
  handle_->cancel();
  end({stream_outcome::kind::client_gone, finish_reason::cancelled, {}, "client disconnected"});
  return false;
}

void sse_stream::end(stream_outcome o) {
  if (ended_) return;
  ended_ = true;
  // prompt_tokens() is fixed at submission; the other counts are the engine's only once it is
  // done with the request, else what this stream saw.
  o.usage.prompt = handle_->prompt_tokens();
  o.usage.completion = tokens_seen_;
  if (handle_->done()) o.usage = {handle_->prompt_tokens(), handle_->completion_tokens(), handle_->reused_tokens()};
  if (on_end_) on_end_(o);
}

bool sse_stream::pump(httplib::DataSink& sink) {
  if (ended_) return false;
  if (!started_) {
    started_ = true;
    // Chat streams open with the role, as OpenAI's do; it also tells the client at once that the
    // request was accepted, before a queued request gets its first token.
    if (meta_.kind == api_kind::chat && !write(sink, sse_event(chunk_body(meta_, {}, {}, true)))) return client_gone();
  }
  token_channel::batch b;
  const bool got = channel_->take(poll_interval, b);
  if (got) tokens_seen_ = b.tokens;
  if (!got) {
    // Nothing new. is_writable() peeks the socket: EOF from a client that left reads as "not
    // writable", so a queued request is cancelled before it ever takes KV blocks.
    if (!sink.is_writable()) return client_gone();
    return true;
  }
  if (!b.text.empty() && !write(sink, sse_event(chunk_body(meta_, b.text)))) return client_gone();
  if (!b.finished) return true;

  // The callback's final event comes just before the engine marks the request done.
  handle_->wait();
  stream_outcome o;
  o.reason = b.reason;
  std::string tail;
  if (b.reason == finish_reason::stop || b.reason == finish_reason::length) {
    tail += sse_event(chunk_body(meta_, {}, to_string(b.reason)));
    if (include_usage_)
      tail += sse_event(usage_chunk_body(meta_, {handle_->prompt_tokens(), handle_->completion_tokens(), handle_->reused_tokens()}));
  } else {
    // Cancelled by the server (shutdown) or failed in the engine: an error event, which the
    // OpenAI clients raise as APIError, rather than a finish_reason that would look like success.
    const bool failed = b.reason == finish_reason::error;
    o.how = failed ? stream_outcome::kind::failed : stream_outcome::kind::cancelled;
    o.detail = failed ? "generation failed: " + handle_->error_message() : "request cancelled: the server is shutting down";
    tail += sse_event(error_body(api_error(failed ? 500 : 503, "server_error", o.detail, {}, failed ? "" : "shutting_down")));
  }
  tail += sse_event("[DONE]");
  if (!write(sink, tail)) return client_gone();
  sink.done();
  end(std::move(o));
  return true;
}

}  // namespace gemmaforge::serve
