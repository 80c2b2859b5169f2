#pragma once
// Umbrella header for the host-side API that needs nothing beyond the C++ standard library:
// descriptors and registry, the memory planner, the KV pool and the engine. Also include, as needed:
//   <gemmaforge/io/weight_binding.hpp>      model files (GGUF; safetensors needs nlohmann-json)
//   <gemmaforge/tokenizer/tokenizer.hpp>    tokenizer + chat templates (link gemmaforge::tokenizer)
//   <gemmaforge/runtime/planned_engine.hpp> engine<Model, Backend, Config> (link gemmaforge::tokenizer)
//   <gemmaforge/backend/cpu/backend.hpp>    the CPU backend
//   <gemmaforge/backend/cuda/executor.cuh>  the CUDA backend, in .cu files (link gemmaforge::cuda)
#include <gemmaforge/version.hpp>
#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/tensor.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/plan/plan.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/runtime/engine.hpp>
