// The test models (model/tiny.hpp) on the CUDA executor, KV bf16 and fp8, for test binaries only
// (engines_test_models.cpp registers the CPU side and the identification; tools/gpu_oracle.py
// runs the tiny golden fixtures through the twin bin/test-models/gemmaforge-generate).
#include <gemmaforge/model/tiny.hpp>

#include "cuda_executor_maker.cuh"
#include "engine_factory.hpp"

namespace gemmaforge::programs::detail {
namespace {

std::unique_ptr<program_engine> make_cuda_test_model_engine(std::shared_ptr<const model_file> file, std::string_view name,
                                                            std::shared_ptr<const tokenizer> tok, const engine_options& o,
                                                            const startup& st) {
  return make_engine_from<tiny_models, cuda_executor_maker, cuda_kv_types>(std::move(file), name, std::move(tok), o, st);
}

[[maybe_unused]] const bool registered = [] {
  test_models().make_cuda = make_cuda_test_model_engine;
  return true;
}();

}  // namespace
}  // namespace gemmaforge::programs::detail
