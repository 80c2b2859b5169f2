// Weight bytes per storage scheme, and the q4_k_m rule against real Q4_K_M files.
#include <catch2/catch.hpp>

#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/weight_bytes.hpp>

namespace gf = gemmaforge;
using namespace gf::models;
using gf::tensor_format;
using gf::tensor_role;
using gf::weight_scheme;

namespace {
template <class M>
constexpr std::uint64_t norm_params() {
  return M::norm_params_per_layer * M::n_layers + M::hidden;
}
}  // namespace

// bf16 = 2 B per matrix weight + 4 B per norm weight; the tied embedding is counted once.
static_assert(gf::weight_bytes<openchat_3_5_0106_gemma>(weight_scheme::bf16) ==
              2 * openchat_3_5_0106_gemma::param_count + 2 * norm_params<openchat_3_5_0106_gemma>());
static_assert(gf::weight_bytes<gemma_3_270m>(weight_scheme::f32) == 4 * gemma_3_270m::param_count);

TEST_CASE("plain schemes weigh 4 or 2 bytes per matrix weight, norms always f32", "[cpu][plan]") {
  gf::for_each_type(gf::production_models{}, [](auto tag) {
    using M = typename decltype(tag)::type;
    INFO(M::name);
    const std::uint64_t matrices = M::param_count - norm_params<M>();
    CHECK(gf::weight_bytes<M>(weight_scheme::f32) == 4 * M::param_count);
    CHECK(gf::weight_bytes<M>(weight_scheme::bf16) == 2 * matrices + 4 * norm_params<M>());
    CHECK(gf::weight_bytes<M>(weight_scheme::f16) == gf::weight_bytes<M>(weight_scheme::bf16));
    // Every shape here is a multiple of 32, so q8_0 is exactly 34/32 B per matrix weight.
    CHECK(gf::weight_bytes<M>(weight_scheme::q8_0) == matrices / 32 * 34 + 4 * norm_params<M>());
    // q4_k_m lies between 4.5 bits (all Q4_K) and 8.5 bits (all Q8_0) per weight.
    const std::uint64_t q4 = gf::weight_bytes<M>(weight_scheme::q4_k_m);
    CHECK(q4 >= matrices / 256 * 144);
    CHECK(q4 <= gf::weight_bytes<M>(weight_scheme::q8_0));
  });
  // The seed's figure: 8,537,680,896 weights x 2 B = 16,284.3 MiB (+0.3 MiB: norms kept as f32).
  CHECK(openchat_3_5_0106_gemma::param_count == 8'537'680'896ull);
}

TEST_CASE("q4_k_m assigns formats the way llama.cpp's Q4_K_M does", "[cpu][plan]") {
  constexpr auto s = weight_scheme::q4_k_m;
  // Gemma 3 270M (18 layers, hidden 640 = 2.5 x 256): what the real file stores.
  CHECK(gf::weight_format(s, tensor_role::embedding, 0, 18, 640, true) == tensor_format::q8_0);  // Q6_K -> Q8_0
  CHECK(gf::weight_format(s, tensor_role::q, 3, 18, 640, true) == tensor_format::q5_0);          // Q4_K -> Q5_0
  CHECK(gf::weight_format(s, tensor_role::v, 0, 18, 640, true) == tensor_format::q8_0);          // more bits
  CHECK(gf::weight_format(s, tensor_role::v, 5, 18, 640, true) == tensor_format::q5_0);
  CHECK(gf::weight_format(s, tensor_role::o, 5, 18, 1024, true) == tensor_format::q4_k);
  CHECK(gf::weight_format(s, tensor_role::down, 0, 18, 2048, true) == tensor_format::q6_k);
  CHECK(gf::weight_format(s, tensor_role::down, 5, 18, 2048, true) == tensor_format::q4_k);
  // "More bits" layers of 18: 0, 1 (< n/8), 15, 16, 17 (>= 7n/8), 4, 7, 10, 13 (every third): 9.
  int more = 0;
  for (int i = 0; i < 18; ++i) more += gf::weight_format(s, tensor_role::down, i, 18, 2048, true) == tensor_format::q6_k;
  CHECK(more == 9);
  // An untied model keeps its embedding at the base type and gives the head Q6_K.
  CHECK(gf::weight_format(s, tensor_role::embedding, 0, 32, 4096, false) == tensor_format::q4_k);
  CHECK(gf::weight_format(s, tensor_role::output, 0, 32, 4096, false) == tensor_format::q6_k);
  // A row that not even 32 divides falls back to F16.
  CHECK(gf::weight_format(s, tensor_role::q, 0, 8, 48, true) == tensor_format::f16);
}

TEST_CASE("q4_k_m estimate for gemma-3-270m against the real Q4_K_M file", "[cpu][plan]") {
  // gemma-3-270m-q4_k_m.gguf (the default model of scripts/setup) is 253,113,024 bytes. Its
  // tensor data, summed over the file's tensor infos with gguf-py, is 246,587,904 bytes
  // (Q8_0 179,824,640 + Q5_0 43,591,680 + Q4_K 13,271,040 + Q6_K 9,676,800 + F32 223,744); the
  // remaining 6,525,120 bytes are metadata, mostly the 262,144-token vocabulary.
  constexpr std::uint64_t file_bytes = 253'113'024;
  constexpr std::uint64_t tensor_data_bytes = 246'587'904;
  const std::uint64_t estimate = gf::weight_bytes<gemma_3_270m>(weight_scheme::q4_k_m);
  // The rule reproduces the tensor data exactly...
  CHECK(estimate == tensor_data_bytes);
  // ...so against the whole file it is low by the metadata only. Tolerance: within 3% below the
  // file size (the metadata is 2.6% of this small file; of a 7B file it is under 0.1%).
  CHECK(estimate <= file_bytes);
  CHECK(double(file_bytes - estimate) / double(file_bytes) < 0.03);
}

TEST_CASE("q4_k_m estimate for mistral-7b against the published Q4_K_M file", "[cpu][plan]") {
  // mistral-7b-v0.1.Q4_K_M.gguf (TheBloke, llama.cpp's Q4_K_M) is 4,368,439,584 bytes; its
  // metadata (a 32,000-token vocabulary) is well under 1 MB. Tolerance: within 0.1% below.
  constexpr std::uint64_t file_bytes = 4'368'439'584;
  const std::uint64_t estimate = gf::weight_bytes<mistral_7b>(weight_scheme::q4_k_m);
  CHECK(estimate <= file_bytes);
  CHECK(double(file_bytes - estimate) / double(file_bytes) < 0.001);
}
