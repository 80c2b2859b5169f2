// gemmaforge-perplexity: perplexity of a model over a text, by llama.cpp's method so the numbers
// compare directly with llama-perplexity's:
//   the text is tokenized once (with BOS), cut into consecutive chunks of ctx-size tokens, the
//   first token of each chunk is replaced by BOS, each chunk is evaluated on its own (fresh KV),
//   and only the second half of each chunk is scored: logits at positions first..ctx-2 predict
//   tokens first+1..ctx-1, first = ctx/2.
// Output: a running "[chunk]ppl" line, then "Final estimate: PPL = <value> +/- <error>".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gemmaforge/backend/cpu/ops.hpp>

#include "cli.hpp"
#include "program_engine.hpp"

namespace gf = gemmaforge;
namespace gp = gemmaforge::programs;

namespace {
std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw gf::error(gf::errc::io, path + ": cannot read");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gemmaforge-perplexity: perplexity over a text (llama.cpp's method)", "gemmaforge-perplexity"};
  gp::engine_options eo;
  std::string kv, text_file, tokens_file;
  int chunks = -1;
  gp::add_engine_flags(app, eo, kv);
  eo.limits.max_seq_len = 512;
  auto* f_opt = app.add_option("-f,--file", text_file, "text to evaluate");
  auto* t_opt = app.add_option("--tokens", tokens_file, "file of whitespace-separated token ids instead of text (used as given)");
  f_opt->excludes(t_opt);
  app.add_option("--chunks", chunks, "evaluate at most this many chunks (-1 = all)");
  if (int rc = gp::parse_cli(app, argc, argv); rc >= 0) return rc;

  try {
    gp::finish_engine_flags(eo, kv);
    if (text_file.empty() && tokens_file.empty()) throw gf::error(gf::errc::invalid_argument, "give a text with -f FILE or ids with --tokens FILE");
    const int n_ctx = int(eo.limits.max_seq_len);
    if (eo.fit || n_ctx < 8) throw gf::error(gf::errc::invalid_argument, "--ctx-size must be at least 8");
    eo.limits.prefill_chunk = std::min(eo.limits.prefill_chunk, eo.limits.max_seq_len);
    eo.limits.logits_rows = eo.limits.prefill_chunk;  // every prompt row of a chunk step yields logits
    eo.limits.prefix_slots = 0;                // chunks are independent: nothing to share
    eo.limits.max_batch = 1;
    auto eng = gp::open_engine(eo);
    const auto& info = eng->info();
    std::vector<std::int32_t> tokens;
    if (!tokens_file.empty()) {
      std::istringstream in(read_file(tokens_file));
      long long v;
      while (in >> v) {
        if (v < 0 || v >= info.vocab) throw gf::error(gf::errc::invalid_argument, tokens_file + ": token id " + std::to_string(v) + " outside the vocabulary");
        tokens.push_back(std::int32_t(v));
      }
      if (!in.eof()) throw gf::error(gf::errc::invalid_argument, tokens_file + ": not a list of token ids");
    } else {
      tokens = eng->encode(read_file(text_file), true);
    }
    const std::int32_t bos = eng->has_tokenizer() ? eng->tok().bos_id() : 2;
    int n_chunk = int(tokens.size()) / n_ctx;
    if (chunks >= 0) n_chunk = std::min(n_chunk, chunks);
    if (n_chunk == 0)
      throw gf::error(gf::errc::invalid_argument, "the text has " + std::to_string(tokens.size()) + " tokens: at least --ctx-size " +
                                                      std::to_string(n_ctx) + " are needed for one chunk");
    std::fprintf(stderr, "perplexity: %s (%s, KV %s), %zu tokens, %d chunks of %d, scoring the second half of each\n",
                 info.name.c_str(), info.isa.c_str(), info.kv.c_str(), tokens.size(), n_chunk, n_ctx);

    const int first = n_ctx / 2;
    double nll = 0, nll2 = 0;
    long long count = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < n_chunk; ++c) {
      std::vector<std::int32_t> chunk(tokens.begin() + std::ptrdiff_t(c) * n_ctx, tokens.begin() + std::ptrdiff_t(c + 1) * n_ctx);
      chunk[0] = bos;
      gf::generation_request r;
      r.prompt = chunk;
      r.stop.max_tokens = 0;
      r.decode_text = false;
      r.prompt_logits_from = first;  // only the scored half's logits are computed (as llama-perplexity)
      r.on_prompt_logits = [&](std::int32_t pos, const float* logits) {
        if (pos < first || pos >= n_ctx - 1) return;
        // -log softmax(logits)[next]: the normalizer in SIMD (262144 exponentials a row on
        // Gemma 3; a libm double exp per element was ~10 % of the run).
        const double lp = double(logits[chunk[std::size_t(pos) + 1]]) - gf::cpu::log_sum_exp(logits, info.vocab);
        nll -= lp;
        nll2 += lp * lp;
        ++count;
      };
      auto h = eng->generate(std::move(r));
      if (h->reason() == gf::finish_reason::error) throw gf::error(gf::errc::internal, h->error_message());
      std::printf("[%d]%.4f,", c + 1, std::exp(nll / double(count)));
      std::fflush(stdout);
    }
    const double mean = nll / double(count);
    const double var = nll2 / double(count) - mean * mean;
    const double ppl = std::exp(mean);
    const double err = count > 1 ? ppl * std::sqrt(std::max(var, 0.0) / double(count - 1)) : 0.0;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", ppl, err);
    std::fprintf(stderr, "perplexity: %lld scored tokens, %.1f s (%.1f tokens/s evaluated)\n", count, secs,
                 double(n_chunk) * n_ctx / secs);
    return 0;
  } catch (const gf::error& e) {
    std::fprintf(stderr, "gemmaforge-perplexity: %s\n", e.what());
    return gp::exit_usage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemmaforge-perplexity: %s\n", e.what());
    return 1;
  }
}
