#pragma once
// Gemma 3 (Mar 2025), text models: 5 local (window 512 / 1024) : 1 global layer, QK-norm,
// RoPE base 1e6 on global layers (positions / 8 on 4B+) and 1e4 on local layers, no softcaps.
// Vocab: 262144 text tokens. The 4B+ HF checkpoints carry 64 more embedding rows (image tokens,
// 262208 in all; their GGUF files keep 262144): hf_extra_embedding_rows lets both bind.
#include <gemmaforge/model/descriptor.hpp>

namespace gemmaforge::models {

struct gemma_3_270m : model_descriptor<family::gemma3, model_dims<262144, 640, 2048, 32768>, attention_shape<4, 1, 256>,
                                       interleaved_layers<18, 512, 6>, rope_params<1000000, 10000>, 256> {
  static constexpr std::string_view name = "gemma-3-270m";
  static constexpr double reference_params = 0.268e9;
};

struct gemma_3_1b : model_descriptor<family::gemma3, model_dims<262144, 1152, 6912, 32768>, attention_shape<4, 1, 256>,
                                     interleaved_layers<26, 512, 6>, rope_params<1000000, 10000>, 256> {
  static constexpr std::string_view name = "gemma-3-1b";
  static constexpr double reference_params = 1.000e9;
};

struct gemma_3_4b : model_descriptor<family::gemma3, model_dims<262144, 2560, 10240, 131072>, attention_shape<8, 4, 256>,
                                     interleaved_layers<34, 1024, 6>, rope_params<1000000, 10000, 8>, 256> {
  static constexpr std::string_view name = "gemma-3-4b";
  static constexpr int hf_extra_embedding_rows = 64;
  static constexpr double reference_params = 3.880e9;
};

struct gemma_3_12b : model_descriptor<family::gemma3, model_dims<262144, 3840, 15360, 131072>, attention_shape<16, 8, 256>,
                                      interleaved_layers<48, 1024, 6>, rope_params<1000000, 10000, 8>, 256> {
  static constexpr std::string_view name = "gemma-3-12b";
  static constexpr int hf_extra_embedding_rows = 64;
  static constexpr double reference_params = 11.766e9;
};

// 27B: head_dim 128, attention scaled by 168^-1/2 (= hidden / heads).
struct gemma_3_27b : model_descriptor<family::gemma3, model_dims<262144, 5376, 21504, 131072>, attention_shape<32, 16, 128>,
                                      interleaved_layers<62, 1024, 6>, rope_params<1000000, 10000, 8>, 168> {
  static constexpr std::string_view name = "gemma-3-27b";
  static constexpr int hf_extra_embedding_rows = 64;
  static constexpr double reference_params = 27.009e9;
};

}  // namespace gemmaforge::models
