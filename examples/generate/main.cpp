// gemmaforge-generate: generate text (or token ids) from a prompt, llama.cpp style.
//   gemmaforge-generate -m model.gguf -p "The capital of France is" -n 32
//   gemmaforge-generate --prompt-ids "2 651 6037" --print-ids --temp 0
// Text streams to stdout as it is generated; load time and speeds go to stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "program_engine.hpp"

namespace gf = gemmaforge;
namespace gp = gemmaforge::programs;

namespace {

std::vector<std::int32_t> parse_ids(const std::string& s) {
  std::vector<std::int32_t> ids;
  std::istringstream in(s);
  std::string tok;
  while (in >> tok) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size() || v < 0 || v > 0x7fffffff) throw gf::error(gf::errc::invalid_argument, "--prompt-ids: not a token id: '" + tok + "'");
    ids.push_back(std::int32_t(v));
  }
  if (ids.empty()) throw gf::error(gf::errc::invalid_argument, "--prompt-ids: no ids given");
  return ids;
}

// "\n" and "\t" typed on a command line mean newline and tab.
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'n' || s[i + 1] == 't' || s[i + 1] == '\\')) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1] == 't' ? '\t' : '\\';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw gf::error(gf::errc::io, path + ": cannot read the prompt file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gemmaforge-generate: generate text from a prompt with a Gemma model", "gemmaforge-generate"};
  gp::engine_options eo;
  std::string kv;
  gp::sampling_flags sf;
  std::string prompt, prompt_file, prompt_ids;
  int n_predict = 128;
  bool chat = false, print_ids = false, ignore_eos = false, no_bos = false;
  std::vector<std::string> stops;
  gp::add_engine_flags(app, eo, kv);
  sf.add(app);
  auto* p_opt = app.add_option("-p,--prompt", prompt, "prompt text");
  auto* f_opt = app.add_option("-f,--file", prompt_file, "read the prompt from a file");
  auto* i_opt = app.add_option("--prompt-ids", prompt_ids, "prompt as space-separated token ids, used exactly as given (no BOS added)");
  p_opt->excludes(f_opt)->excludes(i_opt);
  f_opt->excludes(i_opt);
  app.add_option("-n,--n-predict", n_predict, "tokens to generate")->check(CLI::NonNegativeNumber);
  app.add_option("--stop", stops, "stop when the output contains this text (repeatable; escapes \\n \\t understood)");
  app.add_flag("--chat", chat, "wrap the prompt in the model's chat template (one user turn)");
  app.add_flag("--print-ids", print_ids, "print the generated ids (space-separated, one line) instead of text");
  app.add_flag("--ignore-eos", ignore_eos, "keep generating past end-of-sequence tokens");
  app.add_flag("--no-bos", no_bos, "do not prepend BOS to a text prompt");
  if (int rc = gp::parse_cli(app, argc, argv); rc >= 0) return rc;

  try {
    gp::finish_engine_flags(eo, kv);
    const gf::sampling_params sampling = sf.params();
    if (!prompt_file.empty()) prompt = read_file(prompt_file);
    const bool have_text = !prompt.empty() || !prompt_file.empty();
    if (!have_text && prompt_ids.empty()) throw gf::error(gf::errc::invalid_argument, "give a prompt: -p TEXT, -f FILE or --prompt-ids IDS");
    if (chat && !prompt_ids.empty()) throw gf::error(gf::errc::invalid_argument, "--chat needs a text prompt");

    auto eng = gp::open_engine(eo);
    const auto& info = eng->info();
    std::fprintf(stderr, "model: %s (%s), %s\n", info.name.c_str(), info.path.c_str(), info.weights.c_str());
    std::fprintf(stderr, "engine: %s, KV %s, context %d, arena %s, loaded in %.2f s\n", info.isa.c_str(), info.kv.c_str(),
                 int(eng->config().limits.max_seq_len), gf::format_bytes(info.arena_bytes).c_str(), eng->load_seconds());

    gf::generation_request req;
    if (!prompt_ids.empty()) {
      req.prompt = parse_ids(prompt_ids);
    } else if (chat) {
      const gf::chat_message msg{"user", prompt};
      req.prompt = eng->chat_prompt(std::span(&msg, 1));
    } else {
      req.prompt = eng->encode(prompt, !no_bos);
    }
    req.sampling = sampling;
    req.stop.max_tokens = n_predict;
    req.stop.ignore_eos = ignore_eos;
    for (const auto& s : stops) req.stop.stop_strings.push_back(unescape(s));
    req.decode_text = !print_ids && eng->has_tokenizer();
    if (print_ids && !eng->has_tokenizer()) req.decode_text = false;
    if (!print_ids && !eng->has_tokenizer())
      throw gf::error(gf::errc::invalid_argument, info.path + " has no tokenizer: use --prompt-ids and --print-ids");
    if (!print_ids) {
      req.on_token = [](const gf::token_event& e) {
        if (!e.text.empty()) {
          std::fwrite(e.text.data(), 1, e.text.size(), stdout);
          std::fflush(stdout);
        }
      };
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto h = eng->generate(std::move(req));
    if (h->reason() == gf::finish_reason::error) throw gf::error(gf::errc::internal, h->error_message());
    if (print_ids) {
      std::string line;
      for (auto id : h->output_tokens()) line += (line.empty() ? "" : " ") + std::to_string(id);
      std::printf("%s\n", line.c_str());
    } else {
      std::printf("\n");
    }
    const auto& tm = h->timings();
    const double prefill_s = tm.prefill_seconds(), decode_s = tm.decode_seconds();
    const int n_out = h->completion_tokens();
    std::fprintf(stderr, "prompt: %d tokens in %.3f s (%.1f tok/s); generation: %d tokens in %.3f s (%.1f tok/s); total %.3f s; stop: %s\n",
                 h->prompt_tokens(), prefill_s, prefill_s > 0 ? h->prompt_tokens() / prefill_s : 0.0, n_out, decode_s,
                 decode_s > 0 && n_out > 1 ? (n_out - 1) / decode_s : 0.0,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                 std::string(gf::to_string(h->reason())).c_str());
    return 0;
  } catch (const gf::error& e) {
    std::fprintf(stderr, "gemmaforge-generate: %s\n", e.what());
    return gp::exit_usage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemmaforge-generate: %s\n", e.what());
    return 1;
  }
}
