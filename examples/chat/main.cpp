// gemmaforge-chat: interactive multi-turn chat with the model's template.
// The conversation's token ids are kept and resubmitted each turn; the engine finds them in its
// prefix cache, so only the new turn is computed (the history stays in the KV pool).
// Commands: /reset starts over, /quit (or Ctrl-D) ends.
#include <cstdio>
#include <unistd.h>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "program_engine.hpp"

namespace gf = gemmaforge;
namespace gp = gemmaforge::programs;

int main(int argc, char** argv) {
  CLI::App app{"gemmaforge-chat: chat with a Gemma model", "gemmaforge-chat"};
  gp::engine_options eo;
  std::string kv, system;
  gp::sampling_flags sf;
  int n_predict = 512;
  bool verbose = false;
  gp::add_engine_flags(app, eo, kv);
  sf.add(app);
  app.add_option("--system", system, "system prompt");
  app.add_option("-n,--n-predict", n_predict, "most tokens per reply")->check(CLI::PositiveNumber);
  app.add_flag("-v,--verbose", verbose, "print per-turn statistics (reused history tokens, speed) to stderr");
  if (int rc = gp::parse_cli(app, argc, argv); rc >= 0) return rc;

  try {
    gp::finish_engine_flags(eo, kv);
    const gf::sampling_params sampling = sf.params();
    eo.limits.prefix_slots = std::max(eo.limits.prefix_slots, 2u);  // the history entry must survive between turns
    auto eng = gp::open_engine(eo);
    const auto& info = eng->info();
    std::fprintf(stderr, "gemmaforge-chat: %s (%s, KV %s, context %d). /reset starts over, /quit or Ctrl-D ends.\n",
                 info.name.c_str(), info.isa.c_str(), info.kv.c_str(), int(eng->config().limits.max_seq_len));
    const int end_of_turn = eng->tok().piece_to_id("<end_of_turn>");
    // What separates a finished model turn from the next user turn in the template.
    const std::vector<std::int32_t> separator = info.chat == gf::chat_template::gemma ? eng->encode("\n", false)
                                                                                     : std::vector<std::int32_t>{};
    std::vector<std::int32_t> history;
    std::uint64_t turn = 0;
    std::string line;
    const bool interactive = isatty(fileno(stdin));
    for (;;) {
      if (interactive) std::fputs("> ", stdout), std::fflush(stdout);
      if (!std::getline(std::cin, line)) break;
      if (line == "/quit" || line == "/exit") break;
      if (line == "/reset") {
        history.clear();
        std::puts("(conversation reset)");
        continue;
      }
      if (line.empty()) continue;
      std::vector<gf::chat_message> msgs;
      if (history.empty() && !system.empty()) msgs.push_back({"system", system});
      msgs.push_back({"user", line});
      gf::chat_options co;
      co.add_bos = history.empty();
      auto ids = eng->chat_prompt(msgs, co);
      std::vector<std::int32_t> prompt = history;
      prompt.insert(prompt.end(), ids.begin(), ids.end());
      if (std::int32_t(prompt.size()) >= int(eng->config().limits.max_seq_len)) {
        std::fprintf(stderr, "gemmaforge-chat: the conversation no longer fits the context of %d tokens; /reset to start over\n",
                     int(eng->config().limits.max_seq_len));
        continue;
      }
      gf::generation_request req;
      req.prompt = prompt;
      req.sampling = sampling;
      req.sampling.seed += turn++;
      req.stop.max_tokens = std::min<int>(n_predict, int(eng->config().limits.max_seq_len) - int(prompt.size()));
      req.on_token = [](const gf::token_event& e) {
        if (!e.text.empty()) std::fwrite(e.text.data(), 1, e.text.size(), stdout), std::fflush(stdout);
      };
      auto h = eng->generate(std::move(req));
      std::fputs("\n", stdout);
      std::fflush(stdout);
      if (h->reason() == gf::finish_reason::error) throw gf::error(gf::errc::internal, h->error_message());
      if (verbose)
        std::fprintf(stderr, "[turn %llu: %d prompt tokens (%d reused from the pool), %d generated, %.1f tok/s]\n",
                     static_cast<unsigned long long>(turn), h->prompt_tokens(), h->reused_tokens(), h->completion_tokens(),
                     h->timings().decode_seconds() > 0 ? (h->completion_tokens() - 1) / h->timings().decode_seconds() : 0.0);
      // The history is what the model saw plus what it said, closed like the template closes a turn.
      history = std::move(prompt);
      const auto& out = h->output_tokens();
      history.insert(history.end(), out.begin(), out.end());
      if (end_of_turn >= 0 && (out.empty() || out.back() != end_of_turn)) history.push_back(end_of_turn);
      history.insert(history.end(), separator.begin(), separator.end());
    }
    return 0;
  } catch (const gf::error& e) {
    std::fprintf(stderr, "gemmaforge-chat: %s\n", e.what());
    return gp::exit_usage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemmaforge-chat: %s\n", e.what());
    return 1;
  }
}
