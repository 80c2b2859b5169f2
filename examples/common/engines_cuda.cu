// Engine instantiations on the CUDA backend for every runnable descriptor, KV bf16 and fp8.
// Compiled only when the project builds with CUDA; open_engine() calls it for --backend cuda.
#include <gemmaforge/model/registry.hpp>

#include "cuda_executor_maker.cuh"
#include "engine_factory.hpp"

namespace gemmaforge::programs::detail {

device_info cuda_device_info(int device) {
  GF_CHECK_CUDA(cudaSetDevice(device));
  std::size_t free_b = 0, total_b = 0;
  GF_CHECK_CUDA(cudaMemGetInfo(&free_b, &total_b));
  device_info d;
  d.name = "cuda";
  d.description = "the GPU as cudaMemGetInfo reports it";
  d.kind = device_kind::cuda;
  // What is free now (other processes' memory and our context excluded) plus the context's share
  // of the reserve, which the plan subtracts again.
  d.memory_bytes = std::min<std::uint64_t>(total_b, free_b + cuda_context_reserve);
  d.context_reserve_bytes = cuda_context_reserve;
  d.blas_workspace_bytes = cuda_blas_workspace;
  return d;
}

std::unique_ptr<program_engine> make_cuda_engine(std::shared_ptr<const model_file> file, std::string_view name,
                                                 std::shared_ptr<const tokenizer> tok, const engine_options& o, const startup& st) {
  return make_engine_from<all_models, cuda_executor_maker, cuda_kv_types>(std::move(file), name, std::move(tok), o, st);
}

}  // namespace gemmaforge::programs::detail
