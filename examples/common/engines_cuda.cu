// Engine instantiations on the CUDA backend for every runnable descriptor, KV bf16 and fp8.
// Compiled only when the project builds with CUDA; open_engine() calls it for --backend cuda.
#include <gemmaforge/model/registry.hpp>

#include "cuda_executor_maker.cuh"
#include "engine_factory.hpp"

namespace gemmaforge::programs::detail {

std::unique_ptr<program_engine> make_cuda_engine(std::shared_ptr<const model_file> file, std::string_view name,
                                                 std::shared_ptr<const tokenizer> tok, const engine_options& o,
                                                 std::chrono::steady_clock::time_point t0) {
  return make_engine_from<all_models, cuda_executor_maker, cuda_kv_types>(std::move(file), name, std::move(tok), o, t0);
}

}  // namespace gemmaforge::programs::detail
