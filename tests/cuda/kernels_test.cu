// The elementwise and row kernels against math/, bit for bit: embedding (every weight format),
// RMSNorm (hidden rows and QK-norm heads, in place, fused with the residual add), RoPE (both layer
// kinds' bases, linear scaling), GeGLU, softcap, add, gather, and the KV codec staging.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cuda/elementwise.cuh>
#include <gemmaforge/backend/cuda/embed.cuh>
#include <gemmaforge/backend/cuda/geglu.cuh>
#include <gemmaforge/backend/cuda/kv_append.cuh>
#include <gemmaforge/backend/cuda/norm.cuh>
#include <gemmaforge/backend/cuda/rope.cuh>
#include <gemmaforge/backend/cuda/softcap.cuh>
#include <gemmaforge/kv/kv_codec.hpp>
#include <gemmaforge/math/activation.hpp>
#include <gemmaforge/math/norm.hpp>
#include <gemmaforge/math/quant.hpp>
#include <gemmaforge/math/rope.hpp>
#include <gemmaforge/math/softcap.hpp>

#include "cuda/cuda_test_util.cuh"

#include <random>
#include <vector>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_cuda_test;

TEST_CASE("cuda embed: every weight format, dequantized and scaled like math/", "[cuda][embed]") {
  const int vocab = 37, cols = 512;
  const float scale = gf::round_to(gf::dtype::bf16, std::sqrt(512.0f));  // 22.625 in bf16
  const std::vector<std::int32_t> tokens{0, 36, 5, 5, 17, 2, 30};
  const int T = int(tokens.size());
  for (gf::tensor_format f : gf::all_tensor_formats) {
    INFO(gf::to_string(f));
    weight_pair w(f, vocab, cols, 100 + unsigned(f));
    dbuf<std::int32_t> dt(tokens);
    dbuf<float> out(std::size_t(T) * cols);
    REQUIRE(gc::launch_embed(w.dev_view, dt.get(), T, scale, out.get(), nullptr) == gf::status::ok);
    const auto got = out.download();
    std::vector<float> ref(std::size_t(T) * cols), row(cols);
    for (int t = 0; t < T; ++t) {
      gf::math::dequantize_row(f, w.host_view.row(tokens[std::size_t(t)]), row.data(), cols);
      for (int c = 0; c < cols; ++c) ref[std::size_t(t) * cols + std::size_t(c)] = row[std::size_t(c)] * scale;
    }
    CHECK(bit_mismatches(got, ref, ref.size()) == 0);
  }
}

TEST_CASE("cuda rms_norm: canonical sum of squares, (x * r) * g", "[cuda][norm]") {
  const float eps = 1e-6f;
  // 19 rows: a block per row (decode); 131 rows: a half-warp per row (prefill, QK-norm).
  for (int rows : {19, 131})
  for (int cols : {16, 128, 256, 640, 2304, 3072}) {
    INFO("rows " << rows << " cols " << cols);
    const auto x = random_floats(std::size_t(rows) * cols, 7 + unsigned(cols), 2.0f);
    const auto y = random_floats(std::size_t(rows) * cols, 8 + unsigned(cols), 0.5f);
    auto g = random_floats(std::size_t(cols), 9, 0.3f);
    for (auto& v : g) v += 1.0f;
    std::vector<float> ref(x.size());
    for (int r = 0; r < rows; ++r)
      gf::math::rmsnorm_row(x.data() + std::size_t(r) * cols, g.data(), ref.data() + std::size_t(r) * cols, cols, eps);
    dbuf<float> dx(x), dg(g), dout(x.size());
    REQUIRE(gc::launch_rms_norm(dx.get(), dg.get(), rows, cols, eps, dout.get(), nullptr) == gf::status::ok);
    CHECK(bit_mismatches(dout.download(), ref, ref.size()) == 0);
    REQUIRE(gc::launch_rms_norm(dx.get(), dg.get(), rows, cols, eps, dx.get(), nullptr) == gf::status::ok);  // in place
    CHECK(bit_mismatches(dx.download(), ref, ref.size()) == 0);

    // Fused: x += y, out = norm(x), the same bits as add then norm.
    dx.upload(x);
    dbuf<float> dy(y);
    REQUIRE(gc::launch_add_rms_norm(dx.get(), dy.get(), dg.get(), rows, cols, eps, dout.get(), nullptr) == gf::status::ok);
    std::vector<float> sum(x.size()), ref2(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + y[i];
    for (int r = 0; r < rows; ++r)
      gf::math::rmsnorm_row(sum.data() + std::size_t(r) * cols, g.data(), ref2.data() + std::size_t(r) * cols, cols, eps);
    CHECK(bit_mismatches(dx.download(), sum, sum.size()) == 0);
    CHECK(bit_mismatches(dout.download(), ref2, ref2.size()) == 0);
  }
}

TEST_CASE("cuda rope: NEOX pairs, per-kind base and linear scaling, like math/rope.hpp", "[cuda][rope]") {
  // cos/sin are computed in double and rounded to f32 on both sides; CUDA's double cos/sin may differ
  // from glibc's in the last double bit, which changes the f32 result only within 2^-29 of a rounding
  // boundary (about one value in 10^8): the comparison is exact.
  struct kind {
    double theta;
    float pos_scale;
  };
  for (int D : {16, 128, 256})
    for (kind k : {kind{10000.0, 1.0f}, kind{1000000.0, 1.0f}, kind{1000000.0, 0.125f}}) {
      INFO("head_dim " << D << " theta " << k.theta << " pos_scale " << k.pos_scale);
      const int T = 6, heads = 3;
      const std::vector<std::int32_t> pos{0, 1, 17, 511, 4097, 32767};
      const auto x = random_floats(std::size_t(T) * heads * D, 3);
      const auto table = gc::rope_inv_freq_table(D, k.theta, k.pos_scale);
      std::vector<float> ref = x, c(std::size_t(D / 2)), s(std::size_t(D / 2));
      for (int t = 0; t < T; ++t) {
        gf::math::rope_cos_sin(pos[std::size_t(t)], table.data(), D / 2, c.data(), s.data());
        for (int h = 0; h < heads; ++h) gf::math::rope_apply(ref.data() + (std::size_t(t) * heads + h) * D, c.data(), s.data(), D);
      }
      // The table itself is math::rope_inv_freq with the linear factor 1 / pos_scale.
      for (int i = 0; i < D / 2; ++i)
        CHECK(bits(table[std::size_t(i)]) == bits(gf::math::rope_inv_freq(i, D, float(k.theta), 1.0f / k.pos_scale)));
      dbuf<float> dx(x), dt(table);
      dbuf<std::int32_t> dp(pos);
      REQUIRE(gc::launch_rope(dx.get(), dp.get(), T, heads, D, dt.get(), nullptr) == gf::status::ok);
      CHECK(bit_mismatches(dx.download(), ref, ref.size()) == 0);
    }
}

TEST_CASE("cuda geglu, softcap, add, gather: elementwise math/ bit for bit", "[cuda][elementwise]") {
  const std::size_t n = 4099;  // not a multiple of 4: the scalar tail runs too
  std::vector<float> gate = random_floats(n, 1, 4.0f), up = random_floats(n, 2, 1.0f);
  gate[0] = -20.0f;
  gate[1] = 20.0f;
  gate[2] = 0.0f;
  SECTION("geglu") {
    dbuf<float> dg(gate), du(up);
    REQUIRE(gc::launch_geglu(dg.get(), du.get(), std::int64_t(n), nullptr) == gf::status::ok);
    std::vector<float> ref(n);
    for (std::size_t i = 0; i < n; ++i) ref[i] = gf::math::geglu(gate[i], up[i]);
    CHECK(bit_mismatches(dg.download(), ref, n) == 0);
  }
  SECTION("softcap 30 and 50") {
    for (float cap : {30.0f, 50.0f}) {
      auto x = random_floats(n, 5, 40.0f);
      dbuf<float> dx(x);
      REQUIRE(gc::launch_softcap(dx.get(), std::int64_t(n), cap, nullptr) == gf::status::ok);
      std::vector<float> ref(n);
      for (std::size_t i = 0; i < n; ++i) ref[i] = gf::math::softcap_exp(x[i], cap);
      CHECK(bit_mismatches(dx.download(), ref, n) == 0);
    }
  }
  SECTION("add") {
    dbuf<float> dx(gate), dy(up);
    REQUIRE(gc::launch_add(dx.get(), dy.get(), std::int64_t(n), nullptr) == gf::status::ok);
    std::vector<float> ref(n);
    for (std::size_t i = 0; i < n; ++i) ref[i] = gate[i] + up[i];
    CHECK(bit_mismatches(dx.download(), ref, n) == 0);
  }
  SECTION("gather rows") {
    const int cols = 640;
    const auto src = random_floats(std::size_t(9) * cols, 4);
    const std::vector<std::int32_t> rows{8, 0, 3};
    dbuf<float> ds(src), dd(rows.size() * cols);
    dbuf<std::int32_t> dr(rows);
    REQUIRE(gc::launch_gather_rows(ds.get(), dr.get(), int(rows.size()), cols, dd.get(), nullptr) == gf::status::ok);
    const auto got = dd.download();
    for (std::size_t r = 0; r < rows.size(); ++r)
      for (int c = 0; c < cols; ++c) CHECK(got[r * cols + std::size_t(c)] == src[std::size_t(rows[r]) * cols + std::size_t(c)]);
  }
}

TEMPLATE_TEST_CASE("cuda kv staging encodes like kv_encode_vector", "[cuda][kv]", float, gf::bf16, gf::f16,
                   gf::fp8_e4m3, std::int8_t) {
  using Kv = TestType;
  const int T = 5, kvh = 2, D = 256;
  auto k = random_floats(std::size_t(T) * kvh * D, 11, 3.0f), v = random_floats(std::size_t(T) * kvh * D, 12, 0.01f);
  k[7] = 1000.0f;  // saturates fp8 without a scale: the scale must absorb it
  std::fill(v.begin(), v.begin() + D, 0.0f);  // an all-zero vector: scale 1
  dbuf<float> dk(k), dv(v), ks(std::size_t(T) * kvh), vs(std::size_t(T) * kvh);
  dbuf<Kv> ek(std::size_t(T) * kvh * D), ev(std::size_t(T) * kvh * D);
  REQUIRE(gc::launch_kv_stage<Kv>(dk.get(), dv.get(), T, kvh, D, ek.get(), ev.get(), ks.get(), vs.get(), nullptr) ==
          gf::status::ok);
  const auto gk = ek.download(), gv = ev.download();
  const auto gks = ks.download(), gvs = vs.download();
  std::size_t bad = 0;
  for (int i = 0; i < T * kvh; ++i) {
    std::vector<Kv> rk(D), rv(D);
    const float sk = gf::kv_encode_vector<Kv>(k.data() + std::size_t(i) * D, D, rk.data());
    const float sv = gf::kv_encode_vector<Kv>(v.data() + std::size_t(i) * D, D, rv.data());
    bad += std::memcmp(rk.data(), gk.data() + std::size_t(i) * D, D * sizeof(Kv)) != 0;
    bad += std::memcmp(rv.data(), gv.data() + std::size_t(i) * D, D * sizeof(Kv)) != 0;
    if (gf::kv_has_scale<Kv>) {
      bad += bits(sk) != bits(gks[std::size_t(i)]);
      bad += bits(sv) != bits(gvs[std::size_t(i)]);
    }
  }
  CHECK(bad == 0);
}
