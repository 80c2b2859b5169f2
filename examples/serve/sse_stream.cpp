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
    if (logprobs_ >= 0 && e.logprobs) pending_lp_.append(e.token, *e.logprobs);
  }
}

bool token_channel::take(batch& out) {
  std::lock_guard lock(mutex_);
  if (!finished_ && pending_.empty() && pending_lp_.size() == 0) return false;
  out.text.clear();
  out.text.swap(pending_);  // text arriving during the write goes to the other buffer
  out.tokens = tokens_;
  out.finished = finished_;
  out.reason = reason_;
  if (logprobs_ >= 0) {
    out.logprobs = logprob_log(logprobs_);
    std::swap(out.logprobs, pending_lp_);
  }
  return true;
}

sse_stream::sse_stream(response_meta meta, request_handle handle, std::shared_ptr<token_channel> channel, bool include_usage,
                       std::function<void(const stream_outcome&)> on_end)
    : sse_stream(std::move(meta), std::vector<stream_choice>{stream_choice{std::move(handle), std::move(channel)}},
                 stream_options{include_usage}, std::move(on_end)) {}

sse_stream::sse_stream(response_meta meta, std::vector<stream_choice> choices, stream_options o,
                       std::function<void(const stream_outcome&)> on_end)
    : meta_(std::move(meta)), choices_(std::move(choices)), opts_(std::move(o)), on_end_(std::move(on_end)) {}

sse_stream::~sse_stream() {
  // The transport is finished with this request (normally, or because the connection closed: a
  // dead client, a server stop). A request still running would waste the batch.
  cancel_all();
}

void sse_stream::cancel_all() {
  for (auto& c : choices_)
    if (c.handle && !c.handle->done()) c.handle->cancel();
}

void sse_stream::client_gone() {
  if (ended_) return;
  cancel_all();
  end({stream_outcome::kind::client_gone, finish_reason::cancelled, {}, "client disconnected"});
}

// The prompt once, every choice's tokens (cached: what the leader reused).
usage_counts sse_stream::usage() const {
  usage_counts u;
  u.prompt = choices_.front().handle->prompt_tokens();
  for (const auto& c : choices_) u.completion += c.handle->done() ? c.handle->completion_tokens() : c.tokens_seen;
  if (choices_.front().handle->done()) u.cached = choices_.front().handle->reused_tokens();
  return u;
}

void sse_stream::end(stream_outcome o) {
  if (ended_) return;
  ended_ = true;
  // prompt_tokens() is fixed at submission; the other counts are the engine's only once it is
  // done with a request, else what this stream saw.
  o.usage = usage();
  if (on_end_) on_end_(o);
}

std::string sse_stream::pull(bool& last) {
  last = false;
  std::string out;
  if (ended_) {
    last = true;
    return out;
  }
  const bool chat = meta_.kind == api_kind::chat;
  if (!started_) {
    started_ = true;
    // Chat streams open with the role, as OpenAI's do; it also tells the client at once that the
    // request was accepted, before a queued request gets its first token.
    if (chat)
      for (std::size_t i = 0; i < choices_.size(); ++i) out += sse_event(chunk_body(meta_, std::int32_t(i), {}, {}, true, nullptr));
  }
  bool all_finished = true;
  for (std::size_t i = 0; i < choices_.size(); ++i) {
    stream_choice& c = choices_[i];
    if (c.finished) continue;
    token_channel::batch b;
    if (!c.channel->take(b)) {
      all_finished = false;
      continue;
    }
    c.tokens_seen = b.tokens;
    if (!c.echoed && (!opts_.echo.empty() || opts_.echo_logprobs)) {
      // Completions' echo: the prompt first. Sent with the choice's first tokens, when the prompt's
      // logprobs (computed during its prefill, before any token) are complete; the channel's lock
      // orders them after the engine thread wrote them.
      c.echoed = true;
      nlohmann::ordered_json lp;
      if (opts_.logprobs && opts_.tok) lp = completion_logprobs_json(opts_.echo_logprobs, logprob_log(), 0, 0, *opts_.tok);
      out += sse_event(chunk_body(meta_, std::int32_t(i), opts_.echo, {}, false, opts_.logprobs ? &lp : nullptr));
      c.text_offset += opts_.echo.size();
    }
    const bool has_lp = opts_.logprobs && opts_.tok && b.logprobs.size() > 0;
    if (tools_) {
      // A request with tools has one choice and no logprobs (openai_request.cpp): its text goes
      // through the tool_stream (content, then tool_calls deltas).
      if (!b.text.empty()) out += tools_->on_text(b.text);
    } else if (!b.text.empty() || has_lp) {
      nlohmann::ordered_json lp;
      if (has_lp)
        lp = chat ? chat_logprobs_json(b.logprobs, 0, b.logprobs.size(), *opts_.tok)
                  : completion_logprobs_json(nullptr, b.logprobs, 0, b.logprobs.size(), *opts_.tok, c.text_offset);
      out += sse_event(chunk_body(meta_, std::int32_t(i), b.text, {}, false, has_lp ? &lp : nullptr));
      c.text_offset += b.text.size();
    }
    if (!b.finished) {
      all_finished = false;
      continue;
    }
    // The callback's final event comes just before the engine marks the request done.
    c.handle->wait();
    c.finished = true;
    if (b.reason == finish_reason::stop || b.reason == finish_reason::length) {
      std::string finish(to_string(b.reason));
      if (tools_) out += tools_->on_finish(finish);
      out += sse_event(chunk_body(meta_, std::int32_t(i), {}, finish, false, nullptr));
      continue;
    }
    // Cancelled by the server (shutdown) or failed in the engine: an error event, which the
    // OpenAI clients raise as APIError, rather than a finish_reason that would look like success.
    cancel_all();
    stream_outcome o;
    o.reason = b.reason;
    const bool failed = b.reason == finish_reason::error;
    o.how = failed ? stream_outcome::kind::failed : stream_outcome::kind::cancelled;
    o.detail = failed ? "generation failed: " + c.handle->error_message() : "request cancelled: the server is shutting down";
    out += sse_event(error_body(api_error(failed ? 500 : 503, "server_error", o.detail, {}, failed ? "" : "shutting_down")));
    out += sse_event("[DONE]");
    last = true;
    end(std::move(o));
    return out;
  }
  if (!all_finished) return out;
  stream_outcome o;
  o.reason = choices_.front().handle->reason();
  if (opts_.include_usage) out += sse_event(usage_chunk_body(meta_, usage()));
  out += sse_event("[DONE]");
  last = true;
  end(std::move(o));
  return out;
}

}  // namespace gemmaforge::serve
