#pragma once
// How the programs build a CPU executor from their options.
#include <gemmaforge/backend/cpu/executor.hpp>

#include "program_engine.hpp"

namespace gemmaforge::programs::detail {

template <class Model>
struct cpu_executor_maker {
  template <class KvElem>
  static cpu::cpu_executor make(const engine_options& o, const engine_config&, const model_weights<Model>&) {
    cpu::executor_options e;
    e.threads = o.threads;
    e.precision = o.matmul == "exact"  ? cpu::matmul_precision::exact
                  : o.matmul == "int8" ? cpu::matmul_precision::int8_activations
                  : o.matmul == "int16-block-sums" ? cpu::matmul_precision::int16_block_sums
                  : o.matmul == "int8-block-sums" ? cpu::matmul_precision::int8_block_sums
                                       : cpu::matmul_precision::int16_activations;
    return cpu::cpu_executor(e);
  }
};

}  // namespace gemmaforge::programs::detail
