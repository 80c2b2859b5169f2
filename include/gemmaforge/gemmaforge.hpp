#pragma once
// Umbrella header: the host-side API of gemmaforge (CPU backend). CUDA users include
// <gemmaforge/backend/cuda/...> headers in their .cu files in addition.
#include <gemmaforge/version.hpp>
#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/format.hpp>
