// Sampler: greedy = argmax, filters never sample outside their sets, draws follow the
// distribution, the same seed gives the same tokens, penalties and validation.
#include <catch2/catch.hpp>

#include <gemmaforge/runtime/logprobs.hpp>
#include <gemmaforge/runtime/sampler.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace gf = gemmaforge;

namespace {
struct row {
  explicit row(std::vector<float> l) : logits(std::move(l)), probs(logits.size()), ids(logits.size()) {}
  std::int32_t sample(const gf::sampling_params& p, std::uint64_t counter, const std::vector<std::int32_t>& hist = {}) {
    std::vector<float> work = logits;
    return gf::sample_token(work.data(), std::int32_t(work.size()), hist.data(), std::int32_t(hist.size()), p, counter,
                            {probs.data(), ids.data()});
  }
  std::vector<float> logits, probs;
  std::vector<std::int32_t> ids;
};

std::vector<float> random_logits(int n, std::uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<double> softmax(const std::vector<float>& l, float t) {
  const float m = *std::max_element(l.begin(), l.end());
  std::vector<double> p(l.size());
  double s = 0;
  for (std::size_t i = 0; i < l.size(); ++i) s += p[i] = std::exp(double(l[i] - m) / t);
  for (auto& x : p) x /= s;
  return p;
}

std::vector<std::int32_t> order_desc(const std::vector<double>& p) {
  std::vector<std::int32_t> o(p.size());
  std::iota(o.begin(), o.end(), 0);
  std::stable_sort(o.begin(), o.end(), [&](int a, int b) { return p[std::size_t(a)] > p[std::size_t(b)]; });
  return o;
}
}  // namespace

TEST_CASE("sampler: temperature 0 is argmax, ties to the lowest id", "[cpu][sampler]") {
  row r(random_logits(50000, 1));
  const auto want = std::int32_t(std::max_element(r.logits.begin(), r.logits.end()) - r.logits.begin());
  gf::sampling_params p;
  for (std::uint64_t c = 0; c < 5; ++c) CHECK(r.sample(p, c) == want);
  row tie({1.0f, 3.0f, 3.0f, 2.0f});
  CHECK(tie.sample(p, 0) == 1);
}

TEST_CASE("sampler: top-k, top-p and min-p never sample outside their sets", "[cpu][sampler]") {
  const int vocab = 4096;
  row r(random_logits(vocab, 7));
  const float temp = GENERATE(0.5f, 1.0f, 1.7f);
  const auto probs = softmax(r.logits, temp);
  const auto order = order_desc(probs);
  SECTION("top-k") {
    const int k = GENERATE(1, 5, 40);
    std::set<std::int32_t> allowed(order.begin(), order.begin() + k);
    gf::sampling_params p{.temperature = temp, .top_k = k, .seed = 11};
    for (std::uint64_t c = 0; c < 2000; ++c) REQUIRE(allowed.count(r.sample(p, c)) == 1);
  }
  SECTION("top-p") {
    const float top_p = GENERATE(0.1f, 0.5f, 0.9f);
    std::set<std::int32_t> allowed;
    double acc = 0;
    for (auto id : order) {
      allowed.insert(id);
      acc += probs[std::size_t(id)];
      if (acc >= top_p - 1e-6) break;  // smallest set reaching top_p (+1 for float slack)
    }
    allowed.insert(order[allowed.size()]);
    gf::sampling_params p{.temperature = temp, .top_p = top_p, .seed = 12};
    for (std::uint64_t c = 0; c < 2000; ++c) REQUIRE(allowed.count(r.sample(p, c)) == 1);
  }
  SECTION("min-p") {
    const float min_p = GENERATE(0.05f, 0.3f);
    const double pmax = probs[std::size_t(order[0])];
    gf::sampling_params p{.temperature = temp, .min_p = min_p, .seed = 13};
    for (std::uint64_t c = 0; c < 2000; ++c) {
      const auto id = r.sample(p, c);
      REQUIRE(probs[std::size_t(id)] >= min_p * pmax * (1 - 1e-5));
    }
  }
}

TEST_CASE("sampler: draws follow the tempered distribution", "[cpu][sampler]") {
  row r({0.0f, 1.0f, 2.0f, 0.5f, -1.0f});
  const float temp = 0.8f;
  const auto probs = softmax(r.logits, temp);
  gf::sampling_params p{.temperature = temp, .seed = 99};
  const int n = 40000;
  std::vector<int> counts(5, 0);
  for (int c = 0; c < n; ++c) ++counts[std::size_t(r.sample(p, std::uint64_t(c)))];
  for (std::size_t i = 0; i < 5; ++i) {
    const double expected = probs[i] * n;
    const double sd = std::sqrt(expected * (1 - probs[i]));
    INFO("token " << i << " count " << counts[i] << " expected " << expected);
    CHECK(std::fabs(counts[i] - expected) < 5 * sd);  // 5 sigma: fails only if the sampler is wrong
  }
  // Top-p renormalises over the nucleus: p = {.65 (id 2), .19 (id 1), ...}; top_p 0.7 keeps ids 2 and 1.
  gf::sampling_params q{.temperature = temp, .top_p = 0.7f, .seed = 5};
  std::vector<int> c2(5, 0);
  for (int c = 0; c < n; ++c) ++c2[std::size_t(r.sample(q, std::uint64_t(c)))];
  CHECK(c2[0] + c2[3] + c2[4] == 0);
  const double share2 = probs[2] / (probs[2] + probs[1]);
  CHECK(std::fabs(double(c2[2]) / n - share2) < 0.02);
}

TEST_CASE("sampler: same seed and inputs give the same tokens, another seed differs", "[cpu][sampler]") {
  row r(random_logits(30000, 3, 2.0f));
  gf::sampling_params a{.temperature = 1.0f, .top_k = 50, .top_p = 0.95f, .seed = 1234};
  gf::sampling_params b = a;
  b.seed = 4321;
  std::vector<std::int32_t> s1, s2, s3;
  for (std::uint64_t c = 0; c < 64; ++c) {
    s1.push_back(r.sample(a, c));
    s2.push_back(r.sample(a, c));
    s3.push_back(r.sample(b, c));
  }
  CHECK(s1 == s2);
  CHECK(s1 != s3);
}

TEST_CASE("sampler: penalties push repeated tokens down", "[cpu][sampler]") {
  row r({5.0f, 4.9f, -1.0f, 0.0f});
  gf::sampling_params greedy;
  CHECK(r.sample(greedy, 0) == 0);
  gf::sampling_params rep{.repetition_penalty = 1.1f};
  CHECK(r.sample(rep, 0, {0, 3}) == 1);  // 5 / 1.1 < 4.9
  gf::sampling_params freq{.frequency_penalty = 0.06f};
  CHECK(r.sample(freq, 0, {0}) == 0);        // 5 - 0.06 > 4.9
  CHECK(r.sample(freq, 0, {0, 0}) == 1);     // 5 - 0.12 < 4.9: counts matter
  gf::sampling_params pres{.presence_penalty = 0.2f};
  CHECK(r.sample(pres, 0, {0}) == 1);
  gf::sampling_params window{.repetition_penalty = 2.0f, .penalty_last_n = 1};
  CHECK(r.sample(window, 0, {0, 3}) == 0);   // token 0 is outside the last-1 window
}

TEST_CASE("sampler: invalid parameters are rejected with the field named", "[cpu][sampler]") {
  auto msg = [](const gf::sampling_params& p) {
    try { gf::validate(p); } catch (const gf::error& e) { return std::string(e.what()); }
    return std::string();
  };
  CHECK(msg({.temperature = -0.5f}).find("temperature") != std::string::npos);
  CHECK(msg({.top_k = -1}).find("top_k") != std::string::npos);
  CHECK(msg({.top_p = 0.0f}).find("top_p") != std::string::npos);
  CHECK(msg({.top_p = 1.5f}).find("top_p") != std::string::npos);
  CHECK(msg({.min_p = 1.0f}).find("min_p") != std::string::npos);
  CHECK(msg({.repetition_penalty = 0.0f}).find("repetition_penalty") != std::string::npos);
  CHECK(msg({.temperature = std::nanf("")}).find("temperature") != std::string::npos);
  CHECK(msg({}).empty());
  gf::stop_conditions s;
  s.max_tokens = -1;
  CHECK_THROWS_AS(gf::validate(s), gf::error);
}

// logprobs: log_softmax of the row (reference: a plain double log-softmax), the k largest in
// order with ties to the lower id, on a 262,144-entry row like Gemma 3's.
TEST_CASE("sampler: logprobs equal a reference log-softmax, top-k in order", "[cpu][sampler][logprobs]") {
  const int vocab = 262144;
  std::vector<float> l = random_logits(vocab, 42, 4.0f);
  l[7] = l[9] = 30.0f;  // a tie at the top: 7 before 9
  l[11] = -std::numeric_limits<float>::infinity();  // banned
  double m = -1e300;
  for (float x : l) m = std::max(m, double(x));
  double s = 0;
  for (float x : l) s += std::exp(double(x) - m);
  const double lse = m + std::log(s);
  std::vector<std::int32_t> ids(20);
  std::vector<float> lps(20);
  for (int k : {0, 1, 5, 20}) {
    const gf::token_logprobs r = gf::compute_logprobs(l.data(), vocab, 1234, k, ids.data(), lps.data());
    CHECK(r.logprob == Approx(double(l[1234]) - lse).margin(1e-5));
    REQUIRE(r.n_top == k);
    // The reference order: all ids sorted by (logit desc, id asc).
    std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](std::int32_t a, std::int32_t b) {
                        const float la = l[static_cast<std::size_t>(a)], lb = l[static_cast<std::size_t>(b)];
                        return la > lb || (la == lb && a < b);
                      });
    for (int j = 0; j < k; ++j) {
      CHECK(r.top_ids[j] == order[static_cast<std::size_t>(j)]);
      CHECK(r.top_logprobs[j] == Approx(double(l[order[static_cast<std::size_t>(j)]]) - lse).margin(1e-5));
    }
    if (k >= 2) {
      CHECK(r.top_ids[0] == 7);
      CHECK(r.top_ids[1] == 9);
    }
  }
  const gf::token_logprobs banned = gf::compute_logprobs(l.data(), vocab, 11, 0, ids.data(), lps.data());
  CHECK(std::isinf(banned.logprob));
  CHECK(banned.logprob < 0);
  // The probabilities sum to 1.
  double total = 0;
  for (float x : l) total += std::exp(double(x) - lse);
  CHECK(total == Approx(1.0).epsilon(1e-9));
}

TEST_CASE("sampler: logit_bias shifts logits, -100 bans a token at any temperature", "[cpu][sampler]") {
  std::vector<float> l = random_logits(64, 5);
  const std::int32_t top = std::int32_t(std::max_element(l.begin(), l.end()) - l.begin());
  row r(l);
  gf::sampling_params p;  // greedy
  CHECK(r.sample(p, 0) == top);
  p.logit_bias = {{top, gf::logit_bias_ban}};
  const std::int32_t second = r.sample(p, 0);
  CHECK(second != top);
  // A positive bias makes a low token the argmax.
  const std::int32_t low = std::int32_t(std::min_element(l.begin(), l.end()) - l.begin());
  p.logit_bias = {{low, 100.0f}};
  CHECK(r.sample(p, 0) == low);
  // Banned under sampling too, with and without the filters, over many draws.
  for (float t : {0.7f, 1.0f, 5.0f}) {
    p.temperature = t;
    p.logit_bias = {{top, -100.0f}, {second, -100.0f}};
    for (float top_p : {1.0f, 0.9f}) {
      p.top_p = top_p;
      for (std::uint64_t c = 0; c < 300; ++c) {
        const std::int32_t tok = r.sample(p, c);
        CHECK(tok != top);
        CHECK(tok != second);
      }
    }
  }
  // Validation: the bias range and the id's sign.
  p = {};
  p.logit_bias = {{3, 100.5f}};
  CHECK_THROWS_WITH(gf::validate(p), "logit_bias for token 3 must be in [-100, 100]");
  p.logit_bias = {{-1, 1.0f}};
  CHECK_THROWS_WITH(gf::validate(p), "logit_bias token id -1 is negative");
}
