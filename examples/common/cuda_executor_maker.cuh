#pragma once
// How the programs build a CUDA executor: scratch sized from the engine's limits, and the one
// cudaMalloc sized exactly for the weights + KV pool + workspace of this engine.
#include <gemmaforge/backend/cuda/executor.cuh>

#include "program_engine.hpp"

namespace gemmaforge::programs::detail {

template <class Model>
struct cuda_executor_maker {
  template <class KvElem>
  static cuda::cuda_executor make(const engine_options& o, const engine_config& c, const model_weights<Model>& w) {
    auto x = cuda::cuda_executor_config::for_engine(c);
    x.quant_precision = o.matmul == "exact" ? cuda::matmul_precision::exact : cuda::matmul_precision::int8_activations;
    x.arena_bytes = cuda::cuda_executor::required_arena_bytes<Model, KvElem>(w, c, x);
    return cuda::cuda_executor(x);
  }
};

}  // namespace gemmaforge::programs::detail
