#pragma once
// The memory planner: devices, serving configs, the constexpr plan, its compile-time diagnostics,
// vLLM's formula for comparison and the what-if options of the plan CLI.
#include <gemmaforge/plan/devices.hpp>
#include <gemmaforge/plan/kv_bytes.hpp>
#include <gemmaforge/plan/memory_plan.hpp>
#include <gemmaforge/plan/options.hpp>
#include <gemmaforge/plan/require_fit.hpp>
#include <gemmaforge/plan/serving_config.hpp>
#include <gemmaforge/plan/vllm_formula.hpp>
#include <gemmaforge/plan/weight_bytes.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
