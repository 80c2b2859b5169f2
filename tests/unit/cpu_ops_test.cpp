// CPU ops: every ISA gives the bits of the math/ formula (scalar), which is checked against a
// plain double reference; threading and batch position do not change a row.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <gemmaforge/backend/cpu/ops.hpp>
#include <gemmaforge/math/activation.hpp>
#include <gemmaforge/math/norm.hpp>
#include <gemmaforge/math/rope.hpp>
#include <gemmaforge/math/softcap.hpp>
#include <gemmaforge/model/gemma3.hpp>

#include "unit/cpu_test_util.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;
namespace gm = gemmaforge::math;

TEST_CASE("rmsnorm rows (and per-head QK-norm) on every ISA", "[cpu][ops]") {
  cpu::thread_pool pool(2);
  for (int cols : {16, 40, 256, 640, 2048}) {
    for (int rows : {1, 3, 64}) {
      const auto x = gf_test::random_floats(std::size_t(rows) * cols, 1u + unsigned(cols), 3.0f);
      const auto w = gf_test::random_floats(std::size_t(cols), 2u, 0.5f);
      std::vector<float> g(static_cast<std::size_t>(cols));
      for (int i = 0; i < cols; ++i) g[i] = gm::gemma_norm_gain(w[i]);
      std::vector<float> canon(x.size());
      for (int r = 0; r < rows; ++r) gm::rmsnorm_row(x.data() + r * cols, g.data(), canon.data() + r * cols, cols, 1e-6f);
      for (auto isa : gf_test::available_isas()) {
        INFO("cols " << cols << " rows " << rows << " isa " << cpu::to_string(isa));
        std::vector<float> y(x.size());
        cpu::rmsnorm(pool, x.data(), g.data(), y.data(), rows, cols, 1e-6f, isa);
        for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(gf_test::same_bits(y[i], canon[i]));
        std::vector<float> inplace = x;  // in place gives the same
        cpu::rmsnorm(pool, inplace.data(), g.data(), inplace.data(), rows, cols, 1e-6f, isa);
        REQUIRE(inplace == y);
      }
      // canonical vs double: HF's formula; 8 ulp covers the ~4 f32 roundings + the 16-lane sum.
      for (int r = 0; r < rows; ++r) {
        double ss = 0;
        for (int c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
        const double inv = 1.0 / std::sqrt(ss / cols + 1e-6);
        for (int c = 0; c < cols; ++c) {
          const double want = double(x[r * cols + c]) * inv * double(g[c]);
          REQUIRE(std::fabs(canon[r * cols + c] - want) <= 8 * 0x1p-24 * std::fabs(want) + 1e-30);
        }
      }
    }
  }
}

TEST_CASE("rope over [T][heads][head_dim] with per-token positions", "[cpu][ops]") {
  cpu::thread_pool pool(2);
  for (int head_dim : {16, 128, 256}) {
    const int T = 5, heads = 3, half = head_dim / 2;
    std::vector<float> inv(static_cast<std::size_t>(half));
    cpu::rope_inv_freq_table(inv.data(), head_dim, 10000.0f);
    const std::vector<std::int32_t> pos{0, 1, 17, 511, 32000};
    std::vector<float> c(std::size_t(T) * half), s(std::size_t(T) * half);
    cpu::rope_table(pool, inv.data(), head_dim, pos.data(), T, c.data(), s.data());
    const auto x = gf_test::random_floats(std::size_t(T) * heads * head_dim, 5u);
    std::vector<float> canon = x;
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < heads; ++h) gm::rope_apply(canon.data() + (t * heads + h) * head_dim, c.data() + t * half, s.data() + t * half, head_dim);
    for (auto isa : gf_test::available_isas()) {
      INFO("head_dim " << head_dim << " isa " << cpu::to_string(isa));
      std::vector<float> y = x;
      cpu::rope(pool, y.data(), T, heads, head_dim, c.data(), s.data(), isa);
      for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(gf_test::same_bits(y[i], canon[i]));
    }
    // vs double rotation by position * theta^(-2i/d)
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < half; ++i) {
        const double ang = double(pos[t]) * std::pow(10000.0, -2.0 * i / head_dim);
        const double a = x[(t * heads) * head_dim + i], b = x[(t * heads) * head_dim + i + half];
        // the f32 angle carries |pos| * 2^-24 relative error: ~2e-3 rad at 32000, so compare loosely there
        const double tol = 1e-6 + 4.0 * double(pos[t]) * 0x1p-24 * (std::fabs(a) + std::fabs(b));
        REQUIRE(std::fabs(canon[(t * heads) * head_dim + i] - (a * std::cos(ang) - b * std::sin(ang))) <= tol);
      }
  }
}

TEST_CASE("rope tables from a model descriptor's rope_params", "[cpu][ops]") {
  float g3[128], l3[128], g4[128], ref[128];
  cpu::rope_inv_freq_table<gf::models::gemma_3_270m::rope>(g3, 256, gf::layer_kind::global);
  cpu::rope_inv_freq_table<gf::models::gemma_3_270m::rope>(l3, 256, gf::layer_kind::local);
  cpu::rope_inv_freq_table<gf::models::gemma_3_4b::rope>(g4, 256, gf::layer_kind::global);
  for (int i = 0; i < 128; ++i) {
    REQUIRE(g3[i] == gm::rope_inv_freq(i, 256, 1e6f));
    REQUIRE(l3[i] == gm::rope_inv_freq(i, 256, 1e4f));
    REQUIRE(g4[i] == gm::rope_inv_freq(i, 256, 1e6f) / 8.0f);  // linear scaling x8 on 4B+ global layers
  }
  cpu::rope_inv_freq_table(ref, 256, 1e6f, 8.0f);
  for (int i = 0; i < 128; ++i) REQUIRE(ref[i] == g4[i]);
}

TEST_CASE("geglu, softcap, add on every ISA", "[cpu][ops]") {
  cpu::thread_pool pool(2);
  for (std::int64_t n : {1, 15, 16, 17, 2048, 70000}) {
    const auto g0 = gf_test::random_floats(std::size_t(n), 7u, 4.0f);
    const auto up = gf_test::random_floats(std::size_t(n), 8u);
    const auto z0 = gf_test::random_floats(std::size_t(n), 9u, 80.0f);
    for (auto isa : gf_test::available_isas()) {
      INFO("n " << n << " isa " << cpu::to_string(isa));
      auto g = g0;
      cpu::geglu(pool, g.data(), up.data(), n, isa);
      auto z = z0;
      cpu::softcap(pool, z.data(), n, 30.0f, isa);
      for (std::int64_t i = 0; i < n; ++i) {
        REQUIRE(gf_test::same_bits(g[i], gm::geglu(g0[i], up[i])));
        REQUIRE(gf_test::same_bits(z[i], gm::softcap_exp(z0[i], 30.0f)));
        // vs double: relative 1.5e-6 (gelu form, see math tests) times |up|
        const double want = 0.5 * g0[i] * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g0[i] + 0.044715 * double(g0[i]) * g0[i] * g0[i]))) * up[i];
        REQUIRE(std::fabs(g[i] - want) <= 1.5e-6 * std::max(std::fabs(want), 1e-3 * std::fabs(double(up[i]))) + 1e-30);
        REQUIRE(std::fabs(z[i] - 30.0 * std::tanh(z0[i] / 30.0)) <= 30.0 * 0x1p-22);
      }
    }
    auto y = g0;
    cpu::add(pool, y.data(), up.data(), n);
    for (std::int64_t i = 0; i < n; ++i) REQUIRE(y[i] == g0[i] + up[i]);
  }
}

TEST_CASE("embed gathers and scales rows of any format", "[cpu][ops]") {
  cpu::thread_pool pool(2);
  for (gf::tensor_format f : gf::all_tensor_formats) {
    const int cols = gf::block_elems(f) == 256 ? 512 : 640;
    const auto E = gf_test::random_weight(f, 50, cols, 3u);
    const std::vector<std::int32_t> ids{0, 49, 7, 7, 23};
    std::vector<float> out(ids.size() * std::size_t(cols));
    cpu::embed(pool, E.view, ids.data(), int(ids.size()), out.data(), 25.25f);
    for (std::size_t t = 0; t < ids.size(); ++t) {
      const auto ref = gf_test::ref_dequant_row(f, E.view.row(ids[t]), cols);
      for (int c = 0; c < cols; ++c) REQUIRE(out[t * cols + c] == float(ref[c]) * 25.25f);
    }
  }
}

TEST_CASE("argmax: first maximum, NaN skipped, every ISA", "[cpu][ops]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto isa : gf_test::available_isas()) {
    INFO("isa " << cpu::to_string(isa));
    std::vector<float> x = gf_test::random_floats(262144, 77u);
    x[123456] = 50.0f;
    x[200000] = 50.0f;  // a tie later: the first wins
    x[5] = nan;
    REQUIRE(cpu::argmax(x.data(), std::int64_t(x.size()), isa) == 123456);
    x[17] = 50.0f;
    REQUIRE(cpu::argmax(x.data(), std::int64_t(x.size()), isa) == 17);
    REQUIRE(cpu::argmax(x.data(), 3, isa) == std::int64_t(std::max_element(x.begin(), x.begin() + 3) - x.begin()));
    const std::vector<float> all_nan(40, nan);
    REQUIRE(cpu::argmax(all_nan.data(), 40, isa) == 0);
    std::vector<float> tail(37, -1.0f);
    tail[36] = 2.0f;  // in the scalar tail of the SIMD loop
    REQUIRE(cpu::argmax(tail.data(), 37, isa) == 36);
  }
}

TEST_CASE("log_sum_exp: every ISA gives the scalar formula's bits, within 1e-6 of a double reference", "[cpu][ops]") {
  for (int n : {0, 1, 5, 16, 17, 100, 262144 + 7}) {
    auto x = gf_test::random_floats(std::size_t(n), 9u + unsigned(n), 20.0f);
    if (n > 3) x[3] = -std::numeric_limits<float>::infinity();  // a banned token adds nothing
    const double ref = gm::log_sum_exp(x.data(), n);
    if (n == 0) {
      REQUIRE(std::isinf(ref));
      REQUIRE(ref < 0);
    } else {
      double m = -INFINITY, s = 0;
      for (float v : x) m = std::max(m, double(v));
      for (float v : x) s += std::exp(double(v) - m);
      INFO("n " << n);
      REQUIRE(std::fabs(ref - (m + std::log(s))) <= 1e-12 * std::max(1.0, std::fabs(ref)) + 1e-6);
    }
    for (auto isa : gf_test::available_isas()) {
      INFO("n " << n << " isa " << cpu::to_string(isa));
      const double got = cpu::log_sum_exp(x.data(), n, isa);
      REQUIRE(std::bit_cast<std::uint64_t>(got) == std::bit_cast<std::uint64_t>(ref));
    }
  }
  const std::vector<float> banned(40, -std::numeric_limits<float>::infinity());
  for (auto isa : gf_test::available_isas()) REQUIRE(cpu::log_sum_exp(banned.data(), 40, isa) == -INFINITY);
}
