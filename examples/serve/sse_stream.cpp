#include "sse_stream.hpp"

namespace gemmaforge::serve {

void token_channel::push(const token_event& e) {
  std::lock_guard lock(mutex_);
  if (e.finished) {
    finished_ = true;
    reason_ = e.reason;
  } else {
    pending_ += e.text;
    ++tokens_;
  }
}

bool token_channel::take(batch& out) {
  std::lock_guard lock(mutex_);
  if (!finished_ && pending_.empty()) return false;
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
  // The transport is finished with this request (normally, or because the connection closed: a
  // dead client, a server stop). A request still running would waste the batch.
  if (handle_ && !handle_->done()) handle_->cancel();
}

void sse_stream::client_gone() {
  if (ended_) return;
  handle_->cancel();
  end({stream_outcome::kind::client_gone, finish_reason::cancelled, {}, "client disconnected"});
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

std::string sse_stream::pull(bool& last) {
  last = false;
  std::string out;
  if (ended_) {
    last = true;
    return out;
  }
  if (!started_) {
    started_ = true;
    // Chat streams open with the role, as OpenAI's do; it also tells the client at once that the
    // request was accepted, before a queued request gets its first token.
    if (meta_.kind == api_kind::chat) out += sse_event(chunk_body(meta_, {}, {}, true));
  }
  token_channel::batch b;
  if (!channel_->take(b)) return out;
  tokens_seen_ = b.tokens;
  if (!b.text.empty()) out += tools_ ? tools_->on_text(b.text) : sse_event(chunk_body(meta_, b.text));
  if (!b.finished) return out;

  // The callback's final event comes just before the engine marks the request done.
  handle_->wait();
  stream_outcome o;
  o.reason = b.reason;
  if (b.reason == finish_reason::stop || b.reason == finish_reason::length) {
    std::string finish(to_string(b.reason));
    if (tools_) out += tools_->on_finish(finish);
    out += sse_event(chunk_body(meta_, {}, finish));
    if (include_usage_)
      out += sse_event(usage_chunk_body(meta_, {handle_->prompt_tokens(), handle_->completion_tokens(), handle_->reused_tokens()}));
  } else {
    // Cancelled by the server (shutdown) or failed in the engine: an error event, which the
    // OpenAI clients raise as APIError, rather than a finish_reason that would look like success.
    const bool failed = b.reason == finish_reason::error;
    o.how = failed ? stream_outcome::kind::failed : stream_outcome::kind::cancelled;
    o.detail = failed ? "generation failed: " + handle_->error_message() : "request cancelled: the server is shutting down";
    out += sse_event(error_body(api_error(failed ? 500 : 503, "server_error", o.detail, {}, failed ? "" : "shutting_down")));
  }
  out += sse_event("[DONE]");
  last = true;
  end(std::move(o));
  return out;
}

}  // namespace gemmaforge::serve
