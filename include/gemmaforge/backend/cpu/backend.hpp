#pragma once
// The CPU backend tag: the executor the engine runs and the device the deployment is planned for
// (host memory, sized by a template parameter of devices::host).
#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/plan/devices.hpp>

namespace gemmaforge::backend {

template <class Device = devices::host_default>
struct cpu {
  using executor = ::gemmaforge::cpu::cpu_executor;
  using device = Device;
};

}  // namespace gemmaforge::backend
