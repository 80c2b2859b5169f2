#pragma once
// CPU vs CUDA bit-exact engine runs (review findings C2, C3): the models, and the CPU half, which
// parity_cpu.cpp compiles with the host compiler (the CPU backend's SIMD headers are not for nvcc).
// The models are the tiny ones of each generation with query_pre_attn_scalar 144 (Gemma 2 27B's:
// scale 1/12, not a power of two) and 1024 positions, so a 300-token context crosses the 256-token
// attention split (math/attention_order.hpp).
#include <cstdint>
#include <vector>

#include <gemmaforge/model/descriptor.hpp>
#include <gemmaforge/runtime/engine.hpp>

namespace gf_cuda_test {

namespace gf = gemmaforge;

// Gemma 1 scales by head_dim^-1/2 (query_scale_type::sqrt_key_size); this one keeps Gemma 1's
// other traits and takes the 1/12 scale rule of the others, so every generation runs it.
struct parity_gemma1 : gf::model_descriptor<gf::family::gemma1, gf::model_dims<512, 64, 128, 1024>, gf::attention_shape<4, 1, 16>,
                                            gf::all_global_layers<2>, gf::rope_params<10000>, 144, gf::softcaps<>,
                                            gf::chat_template::gemma,
                                            gf::model_traits{.query_scale = gf::query_scale_type::sqrt_pre_attn_scalar}> {
  static constexpr std::string_view name = "parity-gemma1";
  static constexpr double reference_params = double(param_count);
};
struct parity_gemma2 : gf::model_descriptor<gf::family::gemma2, gf::model_dims<512, 64, 128, 1024>, gf::attention_shape<4, 2, 16>,
                                            gf::interleaved_layers<4, 8, 2>, gf::rope_params<10000>, 144,
                                            gf::softcaps<50, 30>> {
  static constexpr std::string_view name = "parity-gemma2";
  static constexpr double reference_params = double(param_count);
};
struct parity_gemma3 : gf::model_descriptor<gf::family::gemma3, gf::model_dims<512, 64, 128, 1024>, gf::attention_shape<4, 1, 16>,
                                            gf::interleaved_layers<6, 8, 6>, gf::rope_params<1000000, 10000>, 144> {
  static constexpr std::string_view name = "parity-gemma3";
  static constexpr double reference_params = double(param_count);
};

struct parity_result {
  std::vector<std::vector<std::int32_t>> tokens;
  std::vector<std::vector<float>> prompt_logits;  // request 0's prompt rows
};

// The engine's config and prompts for every parity run: two requests, one of 300 tokens (two
// attention splits), prefill in chunks of 64, batch 2, greedy decode of 6 tokens.
inline gf::engine_config parity_config() {
  return gf::engine_config{.limits = {.max_seq_len = 320, .max_batch = 2, .prefill_chunk = 64, .block_tokens = 16,
                                      .prefix_slots = 0, .logits_rows = 64}};
}
std::vector<std::vector<std::int32_t>> parity_prompts();
inline constexpr int parity_max_tokens = 6;
inline constexpr std::uint32_t parity_seed = 77;

// The CPU engine (cpu_executor, 2 threads, its default precision: f32 weights take the exact path,
// quantized ones 15-bit activations) on random_model<Model>(parity_seed), KV element float
// (kv_bf16 = false) or bf16; q8 = the layer matrices re-encoded as q8_0 (requantize_layers_q8_0).
template <class Model>
parity_result run_cpu_parity(bool kv_bf16, bool q8 = false);

}  // namespace gf_cuda_test
