// The golden fixtures themselves: they load, their parts agree with each other, and the reference
// semantics HF used agree with our descriptors. (The forward-pass tests that compare gemmaforge to
// these fixtures live with the runtime; this file only vouches for the fixtures.)
#include <catch2/catch.hpp>

#include <support/golden.hpp>

#if GF_GOLDEN_AVAILABLE

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/model/registry.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

namespace gf = gemmaforge;
namespace golden = gemmaforge::golden;

namespace {

// Reads one tensor of a fixture's safetensors file as f32 (F32 or BF16 on disk).
std::vector<float> read_tensor_f32(const std::filesystem::path& file, const golden::safetensors_header& h,
                                   const std::string& name) {
  const auto& e = h.tensors.at(name);
  std::ifstream in(file, std::ios::binary);
  in.seekg(std::streamoff(8 + h.header_bytes + e.begin));
  std::vector<char> raw(e.end - e.begin);
  in.read(raw.data(), std::streamsize(raw.size()));
  REQUIRE(in.good());
  std::vector<float> out;
  if (e.dtype == "F32") {
    out.resize(raw.size() / 4);
    std::memcpy(out.data(), raw.data(), raw.size());
  } else {
    REQUIRE(e.dtype == "BF16");
    out.resize(raw.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
      std::uint16_t b;
      std::memcpy(&b, raw.data() + 2 * i, 2);
      const std::uint32_t u = std::uint32_t(b) << 16;
      std::memcpy(&out[i], &u, 4);
    }
  }
  return out;
}

template <class M>
void check_against_descriptor(const golden::tiny_fixture& f) {
  INFO(f.key);
  CHECK(f.model == M::name);
  CHECK(f.vocab == M::vocab);
  CHECK(f.hidden == M::hidden);
  CHECK(f.ffn == M::ffn);
  CHECK(f.layers == M::n_layers);
  CHECK(f.heads == M::heads);
  CHECK(f.kv_heads == M::kv_heads);
  CHECK(f.head_dim == M::head_dim);
  CHECK(f.max_positions == M::max_positions);
  REQUIRE(int(f.layer_kinds.size()) == M::n_layers);
  for (int i = 0; i < M::n_layers; ++i) {
    INFO("layer " << i);
    CHECK(f.layer_kinds[std::size_t(i)] == M::layers::kind(i));
  }
  CHECK(f.sliding_window == M::window);
  CHECK(f.rope_theta_global == M::rope::global_theta);
  CHECK(f.rope_theta_local == M::rope::local_theta);
  CHECK(f.attn_softcap == float(M::attn_softcap));
  CHECK(f.final_softcap == float(M::final_softcap));
  CHECK(f.rms_eps == M::rms_eps);
  CHECK(f.qk_norm == M::use_qk_norm);
  CHECK(f.post_norms == M::post_norms);
  // HF: Gemma 1 scales by head_dim^-1/2, Gemma 2/3 by query_pre_attn_scalar^-1/2 (both 16 here).
  CHECK(f.attn_scale == float(1.0 / std::sqrt(double(M::query_pre_attn_scalar))));
  // sqrt(hidden) in the activation dtype (f32): 8 exactly for hidden 64.
  CHECK(f.embed_scale == float(std::sqrt(double(M::hidden))));

  // The weights file holds every tensor the descriptor counts (tied head stored once).
  const auto h = golden::read_safetensors_header(f.weights);
  std::uint64_t params = 0, bytes = 0;
  const std::string want_dtype = f.weights_dtype == "bfloat16" ? "BF16" : "F32";
  for (const auto& [name, e] : h.tensors) {
    INFO(name);
    CHECK(e.dtype == want_dtype);
    const auto n = std::accumulate(e.shape.begin(), e.shape.end(), std::int64_t{1}, std::multiplies<>{});
    CHECK(e.end - e.begin == std::uint64_t(n) * (want_dtype == "BF16" ? 2u : 4u));
    params += std::uint64_t(n);
    bytes = std::max(bytes, e.end);
  }
  CHECK(params == M::param_count);
  CHECK(h.tensors.count("lm_head.weight") == 0);
  CHECK(std::filesystem::file_size(f.weights) == 8 + h.header_bytes + bytes);
  const auto& emb = h.tensors.at("model.embed_tokens.weight");
  CHECK(emb.shape == std::vector<std::int64_t>{M::vocab, M::hidden});
  const auto& q = h.tensors.at("model.layers.0.self_attn.q_proj.weight");
  CHECK(q.shape == std::vector<std::int64_t>{M::q_dim, M::hidden});  // [out][in]: y = W x
  const auto& k = h.tensors.at("model.layers.0.self_attn.k_proj.weight");
  CHECK(k.shape == std::vector<std::int64_t>{M::kv_dim, M::hidden});
  CHECK(h.tensors.count("model.layers.0.self_attn.q_norm.weight") == (M::use_qk_norm ? 1u : 0u));
  CHECK(h.tensors.count("model.layers.0.post_feedforward_layernorm.weight") == (M::post_norms ? 1u : 0u));
}

}  // namespace

TEST_CASE("tiny golden fixtures load and agree with themselves", "[golden]") {
  for (const auto key : golden::tiny_fixture_names) {
    const auto f = golden::load_tiny(key);
    INFO(f.key);
    REQUIRE(f.positions == 32);
    REQUIRE(f.logits.size() == std::size_t(f.positions) * std::size_t(f.vocab));
    CHECK(f.ids[0] == 2);  // BOS
    CHECK(std::all_of(f.ids.begin() + 1, f.ids.end(), [&](int t) { return t >= 3 && t < f.vocab; }));
    CHECK(f.positions > f.sliding_window);  // windows cut in

    // Stored argmax, min/max and top-2 gap are those of the stored logits.
    float lo = INFINITY, hi = -INFINITY, gap = INFINITY;
    for (int p = 0; p < f.positions; ++p) {
      const auto row = f.logits_row(p);
      CHECK(std::all_of(row.begin(), row.end(), [](float x) { return std::isfinite(x); }));
      const auto top = std::max_element(row.begin(), row.end());
      CHECK(int(top - row.begin()) == f.argmax[std::size_t(p)]);
      float second = -INFINITY;
      for (std::size_t v = 0; v < row.size(); ++v)
        if (int(v) != f.argmax[std::size_t(p)]) second = std::max(second, row[v]);
      gap = std::min(gap, *top - second);
      lo = std::min(lo, *std::min_element(row.begin(), row.end()));
      hi = std::max(hi, *top);
      if (f.final_softcap > 0) CHECK(std::fabs(*top) < f.final_softcap);  // tanh cap bounds logits
    }
    CHECK(lo == f.logit_min);
    CHECK(hi == f.logit_max);
    CHECK(gap == Approx(f.top2_gap_min).epsilon(1e-6));
    CHECK(f.logit_range() > 20.0f);  // a healthy spread: softcaps and argmax tests mean something

    // Tolerance: 1e-4 of the range, and HF's own f32 rounding (vs f64) well inside it.
    CHECK(f.logits_tolerance == Approx(1e-4 * double(f.logit_range())).epsilon(1e-5));
    CHECK(f.hf_f32_vs_f64 < f.logits_tolerance / 4);

    // Greedy: prompt = the first 8 ids, first token = argmax of the logits at position 7.
    REQUIRE(f.greedy_prompt.size() == 8);
    CHECK(std::equal(f.greedy_prompt.begin(), f.greedy_prompt.end(), f.ids.begin()));
    REQUIRE(f.greedy_continuation.size() == 16);
    CHECK(f.greedy_continuation[0] == f.argmax[f.greedy_prompt.size() - 1]);
    REQUIRE(f.greedy_top2_gaps.size() == f.greedy_continuation.size());
    CHECK(*std::min_element(f.greedy_top2_gaps.begin(), f.greedy_top2_gaps.end()) == f.greedy_top2_gap_min);
    CHECK(f.greedy_top2_gap_min > 2 * f.logits_tolerance);  // a correct engine cannot flip a step
    std::vector<int> distinct(f.greedy_continuation.begin(), f.greedy_continuation.end());
    std::sort(distinct.begin(), distinct.end());
    CHECK(std::unique(distinct.begin(), distinct.end()) - distinct.begin() >= 5);  // not one repeated id
  }
}

TEST_CASE("tiny golden fixtures use the semantics our descriptors state", "[golden]") {
  using namespace gf::models;
  for (const auto* key : {"tiny_gemma1", "tiny_gemma1_bf16"}) check_against_descriptor<tiny_gemma1>(golden::load_tiny(key));
  for (const auto* key : {"tiny_gemma2", "tiny_gemma2_bf16"}) check_against_descriptor<tiny_gemma2>(golden::load_tiny(key));
  for (const auto* key : {"tiny_gemma3", "tiny_gemma3_bf16"}) check_against_descriptor<tiny_gemma3>(golden::load_tiny(key));
}

TEST_CASE("tiny golden hidden states: embedding row and final norm + tied head + softcap", "[golden]") {
  for (const auto key : golden::tiny_fixture_names) {
    const auto f = golden::load_tiny(key);
    INFO(f.key);
    const auto h = golden::read_safetensors_header(f.weights);
    const auto emb = read_tensor_f32(f.weights, h, "model.embed_tokens.weight");  // [vocab][hidden]
    const auto norm = read_tensor_f32(f.weights, h, "model.norm.weight");         // w; gain = 1 + w
    REQUIRE(f.hidden_states.size() == std::size_t(f.layers + 1) * std::size_t(f.positions) * std::size_t(f.hidden));

    for (int p = 0; p < f.positions; ++p) {
      // Row 0: the embedding row times sqrt(hidden) = 8, exact in f32.
      const auto h0 = f.hidden_row(0, p);
      const float* e = emb.data() + std::size_t(f.ids[std::size_t(p)]) * std::size_t(f.hidden);
      for (int i = 0; i < f.hidden; ++i) CHECK(h0[std::size_t(i)] == e[i] * f.embed_scale);

      // Last row -> RMSNorm (1 + w) -> tied head -> final softcap reproduces the logits.
      const auto hl = f.hidden_row(f.layers, p);
      double ss = 0;
      for (float x : hl) ss += double(x) * double(x);
      const double inv = 1.0 / std::sqrt(ss / f.hidden + double(f.rms_eps));
      std::vector<double> y(std::size_t(f.hidden));
      for (int i = 0; i < f.hidden; ++i) y[std::size_t(i)] = double(hl[std::size_t(i)]) * inv * (1.0 + double(norm[std::size_t(i)]));
      const auto row = f.logits_row(p);
      double worst = 0;
      for (int v = 0; v < f.vocab; ++v) {
        double z = 0;
        for (int i = 0; i < f.hidden; ++i) z += y[std::size_t(i)] * double(emb[std::size_t(v) * std::size_t(f.hidden) + std::size_t(i)]);
        if (f.final_softcap > 0) z = f.final_softcap * std::tanh(z / f.final_softcap);
        worst = std::max(worst, std::fabs(z - double(row[std::size_t(v)])));
      }
      CHECK(worst < f.logits_tolerance);
    }
  }
}

TEST_CASE("bf16 fixtures are the f32 fixtures with rounded weights", "[golden]") {
  for (const auto* base : {"tiny_gemma1", "tiny_gemma2", "tiny_gemma3"}) {
    const auto a = golden::load_tiny(base);
    const auto b = golden::load_tiny(std::string(base) + "_bf16");
    INFO(base);
    CHECK(a.weights_dtype == "float32");
    CHECK(b.weights_dtype == "bfloat16");
    CHECK(a.ids == b.ids);
    CHECK(a.greedy_prompt == b.greedy_prompt);
    // Same model up to weight rounding: logits near but not identical (weight rounding of 2^-9
    // moves them by up to ~10% of the range: these random models amplify perturbations).
    double worst = 0;
    for (std::size_t i = 0; i < a.logits.size(); ++i) worst = std::max(worst, std::fabs(double(a.logits[i]) - b.logits[i]));
    CHECK(worst > 0.0);
    CHECK(worst < 0.2 * a.logit_range());  // tiny_gemma2 is the touchiest: 4.8 of 51
    // Every bf16 weight is an f32 weight rounded to bf16 (round to nearest even).
    const auto ha = golden::read_safetensors_header(a.weights);
    const auto hb = golden::read_safetensors_header(b.weights);
    REQUIRE(ha.tensors.size() == hb.tensors.size());
    for (const auto& [name, e] : ha.tensors) {
      const auto wa = read_tensor_f32(a.weights, ha, name);
      const auto wb = read_tensor_f32(b.weights, hb, name);
      REQUIRE(wa.size() == wb.size());
      std::size_t bad = 0;
      for (std::size_t i = 0; i < wa.size(); ++i) {
        std::uint32_t u;
        std::memcpy(&u, &wa[i], 4);
        u += 0x7FFFu + ((u >> 16) & 1u);  // RNE to bf16 (finite values)
        u &= 0xFFFF0000u;
        float r;
        std::memcpy(&r, &u, 4);
        bad += r != wb[i];
      }
      INFO(name);
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("Gemma 3 270M reference loads and agrees with itself and the descriptor", "[golden]") {
  using M = gf::models::gemma_3_270m;
  const auto r = golden::load_reference_270m();
  REQUIRE(int(r.layer_kinds.size()) == M::n_layers);
  for (int i = 0; i < M::n_layers; ++i) CHECK(r.layer_kinds[std::size_t(i)] == M::layers::kind(i));
  CHECK(r.sliding_window == M::window);
  CHECK(r.rope_theta_global == M::rope::global_theta);
  CHECK(r.rope_theta_local == M::rope::local_theta);
  CHECK(r.attn_scale == float(1.0 / std::sqrt(double(M::query_pre_attn_scalar))));
  CHECK(r.embed_scale == float(std::sqrt(640.0)));  // f32 sqrt: 25.298222, not bf16's 25.25
  CHECK(r.embed_scale != 25.25f);
  CHECK(r.rms_eps == M::rms_eps);
  CHECK(r.vocab == M::vocab);
  CHECK(r.hidden == M::hidden);
  CHECK(r.bos == 2);
  CHECK(r.eos == 1);
  CHECK(r.start_of_turn == 105);  // Gemma 3 (Gemma 1/2: 106)
  CHECK(r.end_of_turn == 106);

  REQUIRE(r.prompts.size() >= 3);
  bool long_prompt = false;
  for (const auto& p : r.prompts) {
    INFO(p.name);
    REQUIRE(p.n() > 1);
    CHECK(p.ids[0] == r.bos);
    CHECK(std::all_of(p.ids.begin(), p.ids.end(), [&](int t) { return t >= 0 && t < r.vocab; }));
    long_prompt |= p.n() > M::window;
    float gap = INFINITY;
    for (int t = 0; t < p.n(); ++t) {
      const auto ids = p.topk_ids_at(t);
      const auto lg = p.topk_logits_at(t);
      const auto at = std::size_t(t);
      CHECK(ids[0] == p.argmax[at]);
      CHECK(lg[0] == p.max[at]);
      CHECK(std::is_sorted(lg.begin(), lg.end(), std::greater<>{}));
      CHECK(p.min[at] <= lg[lg.size() - 1]);
      // logsumexp over the vocabulary lies in [max, max + log(vocab)].
      CHECK(p.logsumexp[at] >= p.max[at] - 1e-4f);
      CHECK(p.logsumexp[at] <= p.max[at] + std::log(float(r.vocab)) + 1e-4f);
      gap = std::min(gap, lg[0] - lg[1]);
    }
    CHECK(gap == Approx(p.top2_gap_min).margin(1e-6));
    if (!p.greedy.empty()) {
      CHECK(p.greedy.size() == 24);
      CHECK(p.greedy[0] == p.argmax.back());
      REQUIRE(p.greedy_top2_gaps.size() == p.greedy.size());
      CHECK(p.greedy_top2_gaps[0] == Approx(p.topk_logits.at(p.topk_logits.size() - std::size_t(p.top_k)) -
                                            p.topk_logits.at(p.topk_logits.size() - std::size_t(p.top_k) + 1))
                                         .margin(1e-4));
      CHECK(!p.greedy_text.empty());
    }
  }
  CHECK(long_prompt);  // at least one prompt exercises the 512 window
  const auto& chat = r.prompt("chat");
  CHECK(std::count(chat.ids.begin(), chat.ids.end(), r.start_of_turn) == 2);
  CHECK(std::count(chat.ids.begin(), chat.ids.end(), r.end_of_turn) == 1);
  CHECK(!r.prompt("english").greedy.empty());
  CHECK(!r.prompt("chat").greedy.empty());
  CHECK_THROWS(r.prompt("no such prompt"));
}

TEST_CASE("golden loader reports missing fixtures with the path", "[golden]") {
  try {
    (void)golden::load_tiny("no_such_fixture");
    FAIL("expected an exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("no_such_fixture") != std::string::npos);
  }
}

#else

TEST_CASE("golden fixtures need nlohmann-json", "[golden]") {
  WARN("SKIPPED: built without nlohmann-json (GF_HAVE_JSON); the golden fixtures cannot be read");
}

#endif
