#pragma once
// Rotary position embedding parameters per layer kind.
// Gemma 1/2 use one base (10000). Gemma 3 uses 1e6 on global layers and 1e4 on local layers, and
// the 4B+ models divide global positions by 8 (HF "linear" rope scaling, factor 8).
#include <gemmaforge/model/layer_pattern.hpp>

namespace gemmaforge {

template <long long GlobalTheta, long long LocalTheta = GlobalTheta, int GlobalLinearScale = 1>
struct rope_params {
  static_assert(GlobalTheta > 0 && LocalTheta > 0, "rope_params: bases must be positive");
  static_assert(GlobalLinearScale >= 1, "rope_params: linear scaling factor must be >= 1");
  static constexpr double global_theta = double(GlobalTheta);
  static constexpr double local_theta = double(LocalTheta);
  static constexpr int global_linear_scale = GlobalLinearScale;
  static constexpr double theta(layer_kind k) { return k == layer_kind::global ? global_theta : local_theta; }
  // Positions are divided by this factor before rotation (linear scaling applies to global layers).
  static constexpr float position_scale(layer_kind k) {
    return k == layer_kind::global ? 1.0f / float(GlobalLinearScale) : 1.0f;
  }
};

}  // namespace gemmaforge
