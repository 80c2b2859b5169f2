#pragma once
// Compile-time refusal with the numbers in the error. A bare static_assert(plan::fits) only says
// "static assertion failed"; require_fit<Plan>() instead instantiates a type whose template
// arguments are the numbers at fault, and whose static_assert fires, so the compiler prints e.g.
//   error: static assertion failed: gemmaforge: the KV pool cannot hold max_batch x max_seq_len ...
//   ... in instantiation of 'struct gemmaforge::kv_pool_too_small<16384, 11040>'
// (needed tokens, capacity tokens). The type is only instantiated on the failing path.
#include <cstdint>

#include <gemmaforge/core/units.hpp>
#include <gemmaforge/plan/memory_plan.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge {

// The serving_config itself is invalid (config_error names the reason).
template <config_error Error>
struct invalid_serving_config {
  static_assert(Error == config_error::none,
                "gemmaforge: invalid serving_config: invalid_serving_config<reason>; gf::validate_for<Model>(cfg) says why");
};

// The weights alone exceed budget = device memory x fraction (both in MiB: weights rounded up,
// budget rounded down).
template <std::uint64_t WeightsMiB, std::uint64_t BudgetMiB>
struct weights_exceed_budget {
  static_assert(WeightsMiB <= BudgetMiB,
                "gemmaforge: the weights alone exceed the memory budget: weights_exceed_budget<weights MiB, budget MiB>; "
                "quantize the weights (q8_0, q4_k_m), raise the memory fraction or pick a larger device");
};

// The KV pool left after weights, workspace, reserve and rings holds fewer tokens than
// max_batch x max_seq_len (capacity 0: the fixed costs already exceed the budget).
template <std::uint64_t NeededTokens, std::uint64_t CapacityTokens>
struct kv_pool_too_small {
  static_assert(NeededTokens <= CapacityTokens,
                "gemmaforge: the KV pool cannot hold max_batch x max_seq_len tokens: kv_pool_too_small<needed tokens, "
                "capacity tokens>; use fp8 KV, quantized weights, a shorter context, a smaller batch or a higher fraction");
};

// True when Plan fits; otherwise a compile error naming the numbers. Use as
//   static_assert(gf::require_fit<gf::memory_plan<Model, Device, cfg>>());
template <class Plan>
constexpr bool require_fit() {
  constexpr plan_result r = Plan::result;
  if constexpr (!r.valid()) {
    (void)invalid_serving_config<r.error_code>{};
  } else if constexpr (!r.weights_fit) {
    (void)weights_exceed_budget<ceil_div(r.weights_bytes, MiB), r.budget_bytes / MiB>{};
  } else if constexpr (!r.fits) {
    (void)kv_pool_too_small<r.needed_tokens, r.kv_capacity_tokens>{};
  }
  return r.fits;
}

}  // namespace gemmaforge
