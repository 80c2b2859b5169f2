// math/: the per-element and per-row formulas against plain double-precision references.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gemmaforge/math/activation.hpp>
#include <gemmaforge/math/embedding.hpp>
#include <gemmaforge/math/exp.hpp>
#include <gemmaforge/math/norm.hpp>
#include <gemmaforge/math/reduce.hpp>
#include <gemmaforge/math/rope.hpp>
#include <gemmaforge/math/softcap.hpp>
#include <gemmaforge/math/softmax.hpp>

#include "unit/cpu_test_util.hpp"
#include "unit/math_rope_fixture.inc"

namespace gf = gemmaforge;
namespace gm = gemmaforge::math;

namespace {
// Distance in units in the last place between two finite floats of the same sign.
std::int64_t ulp_diff(float a, float b) {
  std::int32_t x, y;
  std::memcpy(&x, &a, 4);
  std::memcpy(&y, &b, 4);
  if (x < 0) x = std::int32_t(0x80000000u) - x;
  if (y < 0) y = std::int32_t(0x80000000u) - y;
  return std::llabs(std::int64_t(x) - std::int64_t(y));
}

// Calls f(x) at x = lo + i * step for i = 0, 1, ... while x <= hi (an integer counter: a float
// accumulator would drift and make the number of points depend on rounding).
template <class F>
void sweep(double lo, double hi, double step, F&& f) {
  const auto n = static_cast<std::int64_t>(std::floor((hi - lo) / step));
  for (std::int64_t i = 0; i <= n; ++i) f(float(lo + double(i) * step));
}
}  // namespace

TEST_CASE("exp_f32: <= 2 ulp from the correctly rounded exp on [-86, 88], exact edges", "[math]") {
  std::int64_t worst = 0;
  sweep(-86.0, 88.0, 0.0009765625 * 3.3, [&](float x) {
    const float want = float(std::exp(double(x)));
    worst = std::max(worst, ulp_diff(gm::exp_f32(x), want));
  });
  INFO("worst ulp " << worst);
  REQUIRE(worst <= 2);
  REQUIRE(gm::exp_f32(0.0f) == 1.0f);
  REQUIRE(gm::exp_f32(-INFINITY) == 0.0f);
  REQUIRE(gm::exp_f32(-88.0f) == 0.0f);
  REQUIRE(gm::exp_f32(-1000.0f) == 0.0f);
  REQUIRE(std::isfinite(gm::exp_f32(1000.0f)));
  // Below 2^-126 results are subnormal, still within 1 subnormal quantum of the true value.
  REQUIRE(std::fabs(double(gm::exp_f32(-87.5f)) - std::exp(-87.5)) < 1e-44);
}

TEST_CASE("gelu_tanh: torch's formula, the exp form is at least as accurate", "[math]") {
  // Reference: torch's gelu(approximate='tanh') evaluated in double.
  auto ref = [](double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); };
  double worst_tanh_abs = 0, worst_exp_rel = 0, worst_diff = 0;
  sweep(-12.0, 12.0, 0.001, [&](float x) {
    const double r = ref(x);
    // torch's formula in f32 loses relative accuracy for x < 0 (1 + tanh cancels), so it is held to
    // an absolute bound; the exp form x / (1 + e^(-2u)) keeps ~1e-6 relative accuracy everywhere
    // (floor 1e-3 near the zero at x = 0, where both are exact in absolute terms).
    worst_tanh_abs = std::max(worst_tanh_abs, std::fabs(gm::gelu_tanh(x) - r) / std::max(std::fabs(r), 1.0));
    worst_exp_rel = std::max(worst_exp_rel, std::fabs(gm::gelu_tanh_exp(x) - r) / std::max(std::fabs(r), 1e-3));
    worst_diff = std::max(worst_diff, double(std::fabs(gm::gelu_tanh_exp(x) - gm::gelu_tanh(x))));
  });
  INFO("tanh form abs error " << worst_tanh_abs << ", exp form rel error " << worst_exp_rel << ", max |exp - tanh| " << worst_diff);
  REQUIRE(worst_tanh_abs < 1e-6);
  REQUIRE(worst_exp_rel < 1.5e-6);
  REQUIRE(worst_diff < 2e-6);
  REQUIRE(gm::gelu_tanh_exp(0.0f) == 0.0f);
  REQUIRE(std::fabs(gm::gelu_tanh_exp(-30.0f)) < 1e-30f);  // ~ -30 / e^88 (exp saturates), never NaN
  REQUIRE(gm::gelu_tanh_exp(30.0f) == 30.0f);
  REQUIRE(gm::geglu(1.5f, 2.0f) == gm::gelu_tanh_exp(1.5f) * 2.0f);
}

TEST_CASE("softcap: cap * tanh(x / cap) within cap * 2^-22", "[math]") {
  for (float cap : {30.0f, 50.0f}) {
    double worst = 0;
    sweep(-400.0, 400.0, 0.01, [&](float x) {
      const double r = double(cap) * std::tanh(double(x) / cap);
      worst = std::max(worst, std::fabs(double(gm::softcap_exp(x, cap)) - r));
      REQUIRE(std::fabs(double(gm::softcap(x, cap)) - r) <= double(cap) * 0x1p-22);
    });
    INFO("cap " << cap << " worst abs error " << worst);
    REQUIRE(worst <= double(cap) * 0x1p-22);
  }
  REQUIRE(gm::softcap_exp(0.0f, 50.0f) == 0.0f);
  REQUIRE(gm::softcap_exp(1e30f, 50.0f) == 50.0f);
  REQUIRE(gm::softcap_exp(-1e30f, 50.0f) == -50.0f);
}

TEST_CASE("canonical reduction order: 16 lanes, then the 8/4/2/1 tree", "[math]") {
  // Values chosen so that any other order rounds differently: lane 0 gets 2^24 then 1 (lost),
  // lane 8 gets -2^24; the tree adds lanes 0 and 8 first (exactly 0), then the small lanes.
  std::vector<float> x(32, 0.0f);
  x[0] = 16777216.0f;  // lane 0
  x[16] = 1.0f;        // lane 0 again: 2^24 + 1 rounds to 2^24
  x[8] = -16777216.0f; // lane 8
  x[1] = 1.0f;         // lane 1
  x[9] = 0.5f;         // lane 9
  const std::vector<float> ones(32, 1.0f);
  REQUIRE(gm::dot_f32(x.data(), ones.data(), 32) == 1.5f);
  float lane[16];
  for (int i = 0; i < 16; ++i) lane[i] = float(i);
  REQUIRE(gm::tree_sum16(lane) == 120.0f);
}

TEST_CASE("rmsnorm_row: HF's x * rsqrt(mean(x^2) + eps) * (1 + w)", "[math]") {
  for (int n : {1, 16, 40, 256, 640, 2048}) {
    const auto x = gf_test::random_floats(static_cast<std::size_t>(n), 3u + unsigned(n), 2.0f);
    const auto w = gf_test::random_floats(static_cast<std::size_t>(n), 4u + unsigned(n), 0.3f);
    std::vector<float> g(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) g[i] = gm::gemma_norm_gain(w[i]);
    REQUIRE(g[0] == 1.0f + w[0]);
    const float eps = 1e-6f;
    gm::rmsnorm_row(x.data(), g.data(), y.data(), n, eps);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double r = 1.0 / std::sqrt(ss / n + double(eps));
    for (int i = 0; i < n; ++i) {
      const double want = double(x[i]) * r * (1.0 + double(w[i]));
      // the gain rounding (1 + w in f32) plus ~4 f32 roundings: 8 ulp of the result is ample
      REQUIRE(std::fabs(y[i] - want) <= 8 * 0x1p-24 * std::fabs(want) + 1e-30);
    }
  }
}

TEST_CASE("rope: inv_freq equals HF's (torch f32) table, rotation matches double", "[math]") {
  // Every entry equal except 10^3.46875 (index 74 of base 1e6, 111 of base 1e4), where torch's
  // vectorised pow is 1 ulp off the correctly rounded value we use.
  for (int which = 0; which < 2; ++which) {
    const float base = which == 0 ? 1e6f : 1e4f;
    const float* ref = which == 0 ? gf_fixture::inv_freq_1e6 : gf_fixture::inv_freq_1e4;
    const int odd = which == 0 ? 74 : 111;
    for (int i = 0; i < 128; ++i) {
      INFO("base " << base << " i " << i);
      const float v = gm::rope_inv_freq(i, 256, base);
      if (i == odd) REQUIRE(ulp_diff(v, ref[i]) <= 1);
      else REQUIRE(gf_test::same_bits(v, ref[i]));
      // Linear scaling divides by the factor; 8 is exact.
      REQUIRE(gm::rope_inv_freq(i, 256, base, 8.0f) == v / 8.0f);
    }
  }
  // cos/sin are correctly rounded values of the f32 angle; the rotation is HF's a*c - b*s.
  float inv[8], c[8], s[8];
  for (int i = 0; i < 8; ++i) inv[i] = gm::rope_inv_freq(i, 16, 10000.0f);
  for (int pos : {0, 1, 7, 1000, 32767}) {
    gm::rope_cos_sin(pos, inv, 8, c, s);
    auto x = gf_test::random_floats(16, 9u + unsigned(pos));
    const auto x0 = x;
    gm::rope_apply(x.data(), c, s, 16);
    for (int i = 0; i < 8; ++i) {
      const double ang = double(float(pos) * inv[i]);
      REQUIRE(c[i] == float(std::cos(ang)));
      REQUIRE(s[i] == float(std::sin(ang)));
      REQUIRE(x[i] == x0[i] * c[i] - x0[i + 8] * s[i]);
      REQUIRE(x[i + 8] == x0[i + 8] * c[i] + x0[i] * s[i]);
    }
  }
}

TEST_CASE("embedding scale: sqrt(hidden) rounded to the activation dtype", "[math]") {
  REQUIRE(gm::embedding_scale(640, gf::dtype::bf16) == 25.25f);
  REQUIRE(gm::embedding_scale(1152, gf::dtype::bf16) == 34.0f);
  REQUIRE(gm::embedding_scale(2048, gf::dtype::bf16) == 45.25f);
  REQUIRE(gm::embedding_scale(2304, gf::dtype::bf16) == 48.0f);
  REQUIRE(gm::embedding_scale(3072, gf::dtype::bf16) == 55.5f);
  REQUIRE(gm::embedding_scale(3584, gf::dtype::bf16) == 59.75f);
  REQUIRE(gm::embedding_scale(640, gf::dtype::f32) == float(std::sqrt(640.0)));
}

TEST_CASE("online softmax: split states merged in order equal the full softmax", "[math]") {
  const int n = 100, d = 4;
  const auto logits = gf_test::random_floats(n, 21u, 5.0f);
  const auto v = gf_test::random_floats(std::size_t(n) * d, 22u);
  // Reference in double.
  double mx = -1e300, sum = 0, ref[d] = {};
  for (float l : logits) mx = std::max(mx, double(l));
  for (int j = 0; j < n; ++j) {
    const double p = std::exp(double(logits[j]) - mx);
    sum += p;
    for (int k = 0; k < d; ++k) ref[k] += p * v[std::size_t(j) * d + k];
  }
  // Three splits, each accumulated from a fresh state, merged left to right, plus an empty one.
  gm::softmax_state total;
  float acc[d] = {};
  for (auto [b, e] : {std::pair{0, 37}, std::pair{37, 37}, std::pair{37, 80}, std::pair{80, 100}}) {
    gm::softmax_state s;
    float a[d] = {};
    for (int j = b; j < e; ++j) {
      const float m_new = std::fmax(s.m, logits[j]);
      const float alpha = gm::softmax_rescale(s.m, m_new);
      const float p = gm::exp_f32(logits[j] - m_new);
      s.l = s.l * alpha + p;
      for (int k = 0; k < d; ++k) a[k] = std::fma(p, v[std::size_t(j) * d + k], a[k] * alpha);
      s.m = m_new;
    }
    gm::softmax_merge(total, acc, s, a, d);
  }
  for (int k = 0; k < d; ++k) REQUIRE(std::fabs(acc[k] / total.l - ref[k] / sum) < 1e-5);
  // Merging an empty state is the identity, bit for bit.
  gm::softmax_state copy = total, empty;
  float acc2[d], zero[d] = {};
  std::memcpy(acc2, acc, sizeof acc);
  gm::softmax_merge(copy, acc2, empty, zero, d);
  REQUIRE(copy.m == total.m);
  REQUIRE(copy.l == total.l);
  for (int k = 0; k < d; ++k) REQUIRE(acc2[k] == acc[k]);
}
