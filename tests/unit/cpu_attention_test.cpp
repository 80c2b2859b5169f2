// CPU attention against a naive double-precision full-softmax reference, for MQA/GQA/MHA shapes,
// every KV element type, global and windowed layers (block table and ring views with scrambled
// block ids), softcap, and three schedules of the same sequence — one chunk, one token at a time
// (decode), uneven chunks — which must agree bit for bit, on every ISA and thread count.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include <gemmaforge/backend/cpu/attention.hpp>

#include "unit/cpu_test_util.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;

namespace {

// A KV cache for one (sequence, layer) with a scrambled block list.
template <class KvElem>
struct test_cache {
  int block_tokens, n_blocks, kv_heads, head_dim, pool_blocks;
  std::vector<KvElem> k, v;
  std::vector<float> ks, vs;
  std::vector<std::int32_t> blocks;

  test_cache(int bt, int nb, int kvh, int d, std::uint32_t seed)
      : block_tokens(bt), n_blocks(nb), kv_heads(kvh), head_dim(d), pool_blocks(nb + 5) {
    const std::size_t elems = std::size_t(pool_blocks) * kvh * bt * d;
    k.assign(elems, KvElem{});
    v.assign(elems, KvElem{});
    ks.assign(std::size_t(pool_blocks) * kvh * bt, 0.0f);
    vs.assign(ks.size(), 0.0f);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(pool_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::mt19937 rng(seed);
    std::shuffle(ids.begin(), ids.end(), rng);
    blocks.assign(ids.begin(), ids.begin() + nb);
  }
  gf::kv_cache_mut_view mut() {
    return gf::kv_cache_mut_view{k.data(), v.data(), ks.data(), vs.data(), blocks.data(), n_blocks, block_tokens, kv_heads, head_dim};
  }
};

struct scenario {
  int n_positions;
  int window;
  float softcap;
  float q_scale;  // magnitude of q (large values make the softcap and the softmax sharp)
};

// Run the whole sequence with the given chunk lengths; returns out [N][heads][D].
template <class Shape, class KvElem>
std::vector<float> run_sequence(cpu::thread_pool& pool, cpu::cpu_isa isa, const scenario& sc, const std::vector<int>& chunks,
                                const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v) {
  constexpr int H = Shape::heads, KVH = Shape::kv_heads, D = Shape::head_dim;
  const int bt = 16;
  const int nb = sc.window > 0 ? (sc.window + bt - 1) / bt + 1 : (sc.n_positions + bt - 1) / bt;
  test_cache<KvElem> cache(bt, nb, KVH, D, 7u);
  std::vector<float> out(std::size_t(sc.n_positions) * H * D, -7.0f);
  int start = 0;
  for (int T : chunks) {
    cpu::attention_params prm;
    prm.n_tokens = T;
    prm.start = start;
    prm.window = sc.window;
    prm.scale = 1.0f / std::sqrt(float(D));
    prm.softcap = sc.softcap;
    std::vector<std::byte> scratch(cpu::attention_scratch_bytes<Shape, KvElem>(T, sc.n_positions) + 64);
    std::byte* s = scratch.data() + (64 - reinterpret_cast<std::uintptr_t>(scratch.data()) % 64) % 64;
    cpu::attention<Shape, KvElem>(pool, prm, q.data() + std::size_t(start) * H * D, k.data() + std::size_t(start) * KVH * D,
                                  v.data() + std::size_t(start) * KVH * D, cache.mut().as_const(),
                                  out.data() + std::size_t(start) * H * D, s, isa);
    cpu::kv_append<KvElem>(cache.mut(), k.data() + std::size_t(start) * KVH * D, v.data() + std::size_t(start) * KVH * D, start, T);
    start += T;
  }
  return out;
}

// Naive reference: decode(encode(k/v)) per vector, logits in double, full softmax.
template <class Shape, class KvElem>
std::vector<double> reference(const scenario& sc, const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v) {
  constexpr int H = Shape::heads, KVH = Shape::kv_heads, D = Shape::head_dim, G = Shape::group;
  const int N = sc.n_positions;
  std::vector<float> kr(k), vr(v);
  for (int i = 0; i < N * KVH; ++i) {
    gf::kv_round_trip<KvElem>(kr.data() + std::size_t(i) * D, D);
    gf::kv_round_trip<KvElem>(vr.data() + std::size_t(i) * D, D);
  }
  std::vector<double> out(std::size_t(N) * H * D);
  const double scale = 1.0 / std::sqrt(double(D));
  for (int p = 0; p < N; ++p)
    for (int h = 0; h < H; ++h) {
      const int g = h / G;
      const int lo = sc.window > 0 ? std::max(0, p - sc.window + 1) : 0;
      std::vector<double> logit(std::size_t(p - lo + 1));
      double mx = -1e300;
      for (int j = lo; j <= p; ++j) {
        double s = 0;
        for (int d = 0; d < D; ++d)
          s += double(q[(std::size_t(p) * H + h) * D + d]) * double(kr[(std::size_t(j) * KVH + g) * D + d]);
        s *= scale;
        if (sc.softcap > 0) s = sc.softcap * std::tanh(s / sc.softcap);
        logit[j - lo] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (auto& l : logit) sum += (l = std::exp(l - mx));
      for (int d = 0; d < D; ++d) {
        double acc = 0;
        for (int j = lo; j <= p; ++j) acc += logit[j - lo] * double(vr[(std::size_t(j) * KVH + g) * D + d]);
        out[(std::size_t(p) * H + h) * D + d] = acc / sum;
      }
    }
  return out;
}

template <class Shape, class KvElem>
void check_shape(const scenario& sc) {
  constexpr int H = Shape::heads, KVH = Shape::kv_heads, D = Shape::head_dim;
  const int N = sc.n_positions;
  INFO("shape <" << H << "," << KVH << "," << D << "> kv " << gf::to_string(gf::dtype_of<KvElem>::value) << " N " << N
                 << " window " << sc.window << " softcap " << sc.softcap);
  const auto q = gf_test::random_floats(std::size_t(N) * H * D, 11u, sc.q_scale);
  const auto k = gf_test::random_floats(std::size_t(N) * KVH * D, 12u);
  const auto v = gf_test::random_floats(std::size_t(N) * KVH * D, 13u);
  const auto ref = reference<Shape, KvElem>(sc, q, k, v);

  cpu::thread_pool p1(1), p2(2), p3(3);
  std::vector<int> one_chunk{N}, decode(std::size_t(N), 1), uneven;
  for (int left = N, i = 0; left > 0; ++i) {
    const int T = std::min(left, i % 3 == 0 ? 1 : i % 3 == 1 ? 37 : 100);
    uneven.push_back(T);
    left -= T;
  }
  std::vector<float> first;
  for (auto isa : gf_test::available_isas()) {
    INFO("isa " << cpu::to_string(isa));
    const auto a = run_sequence<Shape, KvElem>(p2, isa, sc, one_chunk, q, k, v);
    if (first.empty()) first = a;
    // The scalar kernel (slow: software fmaf) runs one schedule; the SIMD ISAs run all four and
    // are compared with it bit for bit, so every schedule is tied to the canonical bits.
    const bool all = isa != cpu::cpu_isa::scalar || gf_test::available_isas().size() == 1;
    const auto b = all ? run_sequence<Shape, KvElem>(p2, isa, sc, decode, q, k, v) : a;
    const auto c = all ? run_sequence<Shape, KvElem>(p3, isa, sc, uneven, q, k, v) : a;
    const auto d = all ? run_sequence<Shape, KvElem>(p1, isa, sc, decode, q, k, v) : a;
    std::size_t diff_decode = 0, diff_uneven = 0, diff_threads = 0, diff_isa = 0, out_of_tol = 0;
    double max_err = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      diff_decode += !gf_test::same_bits(a[i], b[i]);   // one chunk vs one token at a time
      diff_uneven += !gf_test::same_bits(a[i], c[i]);   // vs uneven chunks on 3 threads
      diff_threads += !gf_test::same_bits(a[i], d[i]);  // vs 1 thread
      diff_isa += !gf_test::same_bits(a[i], first[i]);  // vs the scalar ISA
      // f32 accumulation over <= N keys of O(1) values and the polynomial exp (<= 2 ulp): the
      // error is a few 1e-6 of the output scale; 2e-5 absolute + 2e-5 relative leaves margin
      // without hiding a wrong key or a wrong weight (those move outputs by ~1e-2 and more).
      const double err = std::fabs(double(a[i]) - ref[i]);
      max_err = std::max(max_err, err);
      out_of_tol += !(err <= 2e-5 + 2e-5 * std::fabs(ref[i]));
    }
    INFO("max abs error vs reference " << max_err);
    CHECK(diff_decode == 0);
    CHECK(diff_uneven == 0);
    CHECK(diff_threads == 0);
    CHECK(diff_isa == 0);
    CHECK(out_of_tol == 0);
  }
}

template <class Shape>
void check_all_kv(const scenario& sc) {
  check_shape<Shape, float>(sc);
  check_shape<Shape, gf::bf16>(sc);
  check_shape<Shape, gf::f16>(sc);
  check_shape<Shape, gf::fp8_e4m3>(sc);
  check_shape<Shape, std::int8_t>(sc);
}

}  // namespace

TEST_CASE("attention: MQA <4,1,256> (Gemma 3 270M/1B), global and windowed", "[cpu][kernels][attention]") {
  check_all_kv<gf::attention_shape<4, 1, 256>>({300, 0, 0.0f, 1.0f});
  check_all_kv<gf::attention_shape<4, 1, 256>>({300, 40, 0.0f, 1.0f});
}

TEST_CASE("attention: GQA <8,4,256>, softcap 50 (Gemma 2)", "[cpu][kernels][attention]") {
  check_all_kv<gf::attention_shape<8, 4, 256>>({264, 0, 50.0f, 24.0f});
  check_all_kv<gf::attention_shape<8, 4, 256>>({264, 100, 50.0f, 24.0f});
}

TEST_CASE("attention: small heads <4,1,16>, <4,2,16>, MHA <2,2,32>", "[cpu][kernels][attention]") {
  for (int window : {0, 1, 17, 256}) {
    check_all_kv<gf::attention_shape<4, 1, 16>>({300, window, 0.0f, 3.0f});
    check_all_kv<gf::attention_shape<4, 2, 16>>({300, window, 30.0f, 8.0f});
    check_all_kv<gf::attention_shape<2, 2, 32>>({270, window, 0.0f, 2.0f});
  }
}

TEST_CASE("attention scratch size is a compile-time constant", "[cpu][attention]") {
  constexpr std::size_t decode = cpu::attention_scratch_bytes<gf::attention_shape<4, 1, 256>, gf::bf16>(1, 32768);
  constexpr std::size_t prefill = cpu::attention_scratch_bytes<gf::attention_shape<4, 1, 256>, gf::bf16>(512, 32768);
  static_assert(decode > 0 && prefill > 0);
  // decode: chunk K/V (2 x 512 B) + split partials (32768 / 256 + 2 splits x 4 heads x (256 + 2)
  // floats); prefill: chunk K/V only (512 tokens x 2 x 512 B), the split path is not used.
  REQUIRE(decode == 2 * 512 + 130 * 4 * 258 * 4);
  REQUIRE(prefill == 2 * 512 * 512);
}
