#pragma once
// How the programs build a CUDA executor: its one cudaMalloc is the planned layout's arena for
// this engine's limits and the weights it is about to upload (plan/arena_layout.hpp).
#include <gemmaforge/backend/cuda/executor.cuh>
#include <gemmaforge/plan/arena_layout.hpp>

#include "program_engine.hpp"

namespace gemmaforge::programs::detail {

template <class Model>
struct cuda_executor_maker {
  template <class KvElem>
  static cuda::cuda_executor make(const engine_options& o, const engine_config& c, const model_weights<Model>& w) {
    cuda::cuda_executor_config x;
    x.quant_precision = o.matmul == "exact"  ? cuda::matmul_precision::exact
                        : o.matmul == "int8" ? cuda::matmul_precision::int8_activations
                        : o.matmul == "int16-block-sums" ? cuda::matmul_precision::int16_block_sums
                        : o.matmul == "int8-block-sums" ? cuda::matmul_precision::int8_block_sums
                                             : cuda::matmul_precision::int16_activations;
    x.arena_bytes = cuda::cuda_executor::planned_arena_bytes(x, c.limits, w);
    return cuda::cuda_executor(x);
  }
};

}  // namespace gemmaforge::programs::detail
