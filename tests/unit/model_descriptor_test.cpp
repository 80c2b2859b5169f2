// Model descriptors: parameter counts against the reference table, layer patterns, and the
// registry's name dispatch.
#include <catch2/catch.hpp>

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/model/registry.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace gf = gemmaforge;
using namespace gf::models;

// Static facts: these fail the build, not the test run, when a descriptor is edited wrongly.
static_assert(gemma_2b::attention::group == 8);
static_assert(gemma_2_9b::attention::group == 2);
static_assert(gemma_3_270m::layers::global_layers() == 3 && gemma_3_270m::layers::local_layers() == 15);
static_assert(gemma_3_1b::layers::global_layers() == 4);
static_assert(gemma_2_2b::layers::kind(0) == gf::layer_kind::local && gemma_2_2b::layers::kind(1) == gf::layer_kind::global);
static_assert(tiny_gemma3::layers::kind(5) == gf::layer_kind::global && tiny_gemma3::layers::global_layers() == 1);
static_assert(tiny_gemma2::layers::kind(0) == gf::layer_kind::local && tiny_gemma2::layers::kind(3) == gf::layer_kind::global);
static_assert(tiny_gemma1::layers::window == 0 && tiny_gemma1::kv_heads == 1);
static_assert(gemma_3_270m::layers::index_in_kind(11) == 1);  // second global layer
static_assert(!gemma_7b::post_norms && gemma_2_2b::post_norms && gemma_3_1b::use_qk_norm && !gemma_2_9b::use_qk_norm);
// Named traits (model/model_traits.hpp): the defaults per family, and a mix no family has.
static_assert(gemma_7b::query_scale == gf::query_scale_type::sqrt_key_size &&
              gemma_2_27b::query_scale == gf::query_scale_type::sqrt_pre_attn_scalar);
static_assert(gemma_3_1b::post_norm == gf::post_norm_type::rms_norm && gemma_2b::post_norm == gf::post_norm_type::none);
static_assert(gf::models::mistral_7b::activation == gf::activation_type::silu && !gf::models::mistral_7b::runnable &&
              gf::models::mistral_7b::rms_eps == 1e-5f && gemma_3_270m::rms_eps == 1e-6f);
constexpr gf::model_traits qk_norm_without_post_norms{.post_norm = gf::post_norm_type::none, .use_qk_norm = true};
struct gemma3_with_softcaps
    : gf::model_descriptor<gf::family::gemma3, gf::model_dims<512, 64, 128, 256>, gf::attention_shape<4, 1, 16>,
                           gf::interleaved_layers<6, 8, 6>, gf::rope_params<1000000, 10000>, 16, gf::softcaps<50, 30>,
                           gf::chat_template::gemma, qk_norm_without_post_norms> {
  static constexpr std::string_view name = "gemma3-with-softcaps";
};
static_assert(gemma3_with_softcaps::use_qk_norm && !gemma3_with_softcaps::post_norms && gemma3_with_softcaps::attn_softcap == 50 &&
              gf::model_descriptor_type<gemma3_with_softcaps> && !gemma3_with_softcaps::name.empty());
static_assert(gf::models::openchat_3_5_0106_gemma::param_count == gemma_7b::param_count);
static_assert(gf::models::openchat_3_5_0106_gemma::chat == gf::chat_template::openchat);

TEST_CASE("descriptor parameter counts match the reference table within 0.1%", "[cpu][model]") {
  gf::for_each_type(gf::production_models{}, [](auto tag) {
    using M = typename decltype(tag)::type;
    INFO(M::name << ": " << M::param_count << " parameters, reference " << M::reference_params);
    CHECK(std::fabs(double(M::param_count) - M::reference_params) / M::reference_params < 1e-3);
  });
}

TEST_CASE("tiny descriptors have the golden-test shapes", "[cpu][model]") {
  gf::for_each_type(gf::tiny_models{}, [](auto tag) {
    using M = typename decltype(tag)::type;
    CHECK(M::vocab == 512);
    CHECK(M::hidden == 64);
    CHECK(M::ffn == 128);
    CHECK(M::heads == 4);
    CHECK(M::head_dim == 16);
  });
  CHECK(tiny_gemma1::n_layers == 2);
  CHECK(tiny_gemma2::n_layers == 4);
  CHECK(tiny_gemma2::kv_heads == 2);
  CHECK(tiny_gemma2::window == 8);
  CHECK(tiny_gemma2::attn_softcap == 50);
  CHECK(tiny_gemma2::final_softcap == 30);
  CHECK(tiny_gemma3::n_layers == 6);
  CHECK(tiny_gemma3::rope::global_theta == 1e6);
  CHECK(tiny_gemma3::rope::local_theta == 1e4);
}

TEST_CASE("registry dispatches by name and rejects unknown names", "[cpu][model]") {
  std::vector<std::string> names;
  gf::for_each_type(gf::all_models{}, [&](auto tag) { names.emplace_back(decltype(tag)::type::name); });
  CHECK(names.size() == 12);  // the real models; the tiny test models are not registered
  for (const auto& n : names) CHECK(n.rfind("tiny-", 0) == std::string::npos);
  int layers = 0;
  CHECK(gf::dispatch_model("gemma-3-270m", [&](auto tag) { layers = decltype(tag)::type::n_layers; }));
  CHECK(layers == 18);
  CHECK_FALSE(gf::dispatch_model("gemma-9-9000b", [&](auto) { layers = -1; }));
  CHECK(layers == 18);
}
