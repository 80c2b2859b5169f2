#pragma once
// Device descriptors: the facts the memory planner (and later the kernels' tuning) needs about a
// target. Each device is a type with static constexpr members, so a deployment names its device
// as a template argument; device_info is the same facts as a runtime value, so the plan CLI can
// pick a device by name and run the very same constexpr planner on it.
//
// memory_bytes is the total *as CUDA reports it* (cudaMemGetInfo / cudaDeviceProp::totalGlobalMem),
// not nvidia-smi's figure: on Linux the driver keeps a few hundred MiB that CUDA never exposes
// (RTX 4090: nvidia-smi 24564 MiB, CUDA about 24210 MiB). A memory fraction applied to the larger
// figure would promise memory that cannot be allocated. nvidia-smi's figure is kept as
// nvidia_smi_bytes for reports, since that is the number users see (and the one the seed quotes).
//
// Only the RTX 4090's CUDA-visible total comes from our reference (gemma-models.md §4, §6). The
// others are approximations read off PyTorch's "X GiB total capacity" (which is CUDA's total)
// as commonly reported for those cards; an engine verifies them with cudaMemGetInfo at startup.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include <gemmaforge/core/type_list.hpp>
#include <gemmaforge/core/units.hpp>

namespace gemmaforge {

enum class device_kind : std::uint8_t { cuda, host };

constexpr std::string_view to_string(device_kind k) { return k == device_kind::cuda ? "cuda" : "host"; }

// Memory a CUDA process uses outside our arena; the planner subtracts it from the budget.
//  - context: the CUDA context (per-process driver state, module images of our kernels and of
//    cuBLAS/cuBLASLt, which CUDA 12's lazy loading keeps small, printf/malloc heaps, the local
//    memory reserve). A CUDA 12 context with cuBLAS on Ada/Hopper typically costs 300-500 MiB
//    (PyTorch reports it as "non-PyTorch memory"); we reserve 448 MiB.
//  - blas workspace: 32 MiB for cuBLASLt's prefill GEMMs (NVIDIA's recommended size on Hopper;
//    more than Ada needs) + 32 MiB for cuBLAS's default per-stream workspace and CUDA graph
//    bookkeeping of the decode step.
// Total 512 MiB. Estimates, not measurements: the engine checks the real free memory at startup.
inline constexpr std::uint64_t cuda_context_reserve = 448 * MiB;
inline constexpr std::uint64_t cuda_blas_workspace = 64 * MiB;

// The runtime twin of a device type.
struct device_info {
  std::string_view name;
  std::string_view description;
  device_kind kind = device_kind::cuda;
  std::uint64_t memory_bytes = 0;       // total as CUDA reports it: the planner's base
  std::uint64_t nvidia_smi_bytes = 0;   // total as nvidia-smi shows it (reports only)
  double bandwidth_gbps = 0;            // peak DRAM bandwidth, GB/s (10^9 B/s)
  double bf16_tflops = 0;               // peak dense bf16 tensor throughput, f32 accumulate
  int sm_arch = 0;                      // 89 = sm_89; 0 for the host
  std::uint64_t context_reserve_bytes = 0;
  std::uint64_t blas_workspace_bytes = 0;

  constexpr std::uint64_t reserve_bytes() const { return context_reserve_bytes + blas_workspace_bytes; }
};

template <class D>
concept device_descriptor = requires {
  { D::name } -> std::convertible_to<std::string_view>;
  { D::memory_bytes } -> std::convertible_to<std::uint64_t>;
  { D::kind } -> std::convertible_to<device_kind>;
};

namespace devices {

namespace detail {
// CUDA devices share the reserve; a device type only states its published figures.
struct cuda_device {
  static constexpr device_kind kind = device_kind::cuda;
  static constexpr std::uint64_t context_reserve_bytes = cuda_context_reserve;
  static constexpr std::uint64_t blas_workspace_bytes = cuda_blas_workspace;
};
}  // namespace detail

// GeForce RTX 4090 (AD102). Bandwidth and tensor throughput: NVIDIA Ada GPU architecture
// whitepaper, appendix table (1008 GB/s; 165.2 TFLOPS bf16 with f32 accumulate, dense).
// Memory: 24564 MiB in nvidia-smi, about 24210 MiB visible to CUDA on Linux (reference §4).
struct rtx4090 : detail::cuda_device {
  static constexpr std::string_view name = "rtx4090";
  static constexpr std::string_view description = "NVIDIA GeForce RTX 4090 24 GB";
  static constexpr std::uint64_t memory_bytes = 24210 * MiB;
  static constexpr std::uint64_t nvidia_smi_bytes = 24564 * MiB;
  static constexpr double bandwidth_gbps = 1008;
  static constexpr double bf16_tflops = 165.2;
  static constexpr int sm_arch = 89;
};

// GeForce RTX 3090 (GA102). NVIDIA Ampere GA102 whitepaper: 936 GB/s; 71 TFLOPS bf16 with f32
// accumulate, dense (GeForce runs f32-accumulate tensor math at half rate). nvidia-smi 24576 MiB;
// CUDA total about 23.69 GiB as PyTorch reports it.
struct rtx3090 : detail::cuda_device {
  static constexpr std::string_view name = "rtx3090";
  static constexpr std::string_view description = "NVIDIA GeForce RTX 3090 24 GB";
  static constexpr std::uint64_t memory_bytes = 24258 * MiB;
  static constexpr std::uint64_t nvidia_smi_bytes = 24576 * MiB;
  static constexpr double bandwidth_gbps = 936;
  static constexpr double bf16_tflops = 71;
  static constexpr int sm_arch = 86;
};

// L4 (AD104). NVIDIA L4 datasheet: 300 GB/s; bf16 242 TFLOPS with sparsity = 121 dense.
// nvidia-smi 23034 MiB; CUDA total about 22.17 GiB as PyTorch reports it.
struct l4 : detail::cuda_device {
  static constexpr std::string_view name = "l4";
  static constexpr std::string_view description = "NVIDIA L4 24 GB";
  static constexpr std::uint64_t memory_bytes = 22700 * MiB;
  static constexpr std::uint64_t nvidia_smi_bytes = 23034 * MiB;
  static constexpr double bandwidth_gbps = 300;
  static constexpr double bf16_tflops = 121;
  static constexpr int sm_arch = 89;
};

// A100 40GB SXM4 (GA100). NVIDIA A100 datasheet: 1555 GB/s; 312 TFLOPS bf16 dense.
// nvidia-smi 40960 MiB; CUDA total about 39.59 GiB as PyTorch reports it.
struct a100_40g : detail::cuda_device {
  static constexpr std::string_view name = "a100-40g";
  static constexpr std::string_view description = "NVIDIA A100 40GB SXM4";
  static constexpr std::uint64_t memory_bytes = 40536 * MiB;
  static constexpr std::uint64_t nvidia_smi_bytes = 40960 * MiB;
  static constexpr double bandwidth_gbps = 1555;
  static constexpr double bf16_tflops = 312;
  static constexpr int sm_arch = 80;
};

// A100 80GB SXM4. NVIDIA A100 datasheet: 2039 GB/s; 312 TFLOPS bf16 dense.
// nvidia-smi 81920 MiB; CUDA total about 79.15 GiB as PyTorch reports it.
struct a100_80g : detail::cuda_device {
  static constexpr std::string_view name = "a100-80g";
  static constexpr std::string_view description = "NVIDIA A100 80GB SXM4";
  static constexpr std::uint64_t memory_bytes = 81050 * MiB;
  static constexpr std::uint64_t nvidia_smi_bytes = 81920 * MiB;
  static constexpr double bandwidth_gbps = 2039;
  static constexpr double bf16_tflops = 312;
  static constexpr int sm_arch = 80;
};

// H100 80GB SXM5 (GH100). NVIDIA H100 datasheet: 3.35 TB/s; 989 TFLOPS bf16 dense (1979 sparse).
// nvidia-smi 81559 MiB; CUDA total about 79.11 GiB as PyTorch reports it.
struct h100_80g : detail::cuda_device {
  static constexpr std::string_view name = "h100-80g";
  static constexpr std::string_view description = "NVIDIA H100 80GB SXM5";
  static constexpr std::uint64_t memory_bytes = 81008 * MiB;
  static constexpr std::uint64_t nvidia_smi_bytes = 81559 * MiB;
  static constexpr double bandwidth_gbps = 3350;
  static constexpr double bf16_tflops = 989;
  static constexpr int sm_arch = 90;
};

// The CPU backend: the "device memory" is the RAM the deployment may use, so it is a template
// parameter. No CUDA context, no reserve: the process's own heap and the mmapped file's page
// cache are the operating system's business. Defaults describe the 2-core AVX-512 development
// machine (reference §6: about 30 GB/s streaming read on 2 threads; bf16 throughput an estimate
// from 2 cores x 2 AVX-512 bf16 dot-product ports at about 3 GHz).
template <std::uint64_t MemoryBytes, unsigned BandwidthGBps = 30, unsigned Bf16Gflops = 400>
struct host {
  static_assert(MemoryBytes > 0, "host<MemoryBytes>: memory must be positive");
  static constexpr device_kind kind = device_kind::host;
  static constexpr std::string_view name = "host";
  static constexpr std::string_view description = "CPU backend (host RAM)";
  static constexpr std::uint64_t memory_bytes = MemoryBytes;
  static constexpr std::uint64_t nvidia_smi_bytes = MemoryBytes;
  static constexpr double bandwidth_gbps = BandwidthGBps;
  static constexpr double bf16_tflops = Bf16Gflops / 1000.0;
  static constexpr int sm_arch = 0;
  static constexpr std::uint64_t context_reserve_bytes = 0;
  static constexpr std::uint64_t blas_workspace_bytes = 0;
};

// The host device the CLI offers by the name "host": 32 GiB of RAM.
using host_default = host<32 * GiB>;

}  // namespace devices

// Every named device, in the order the plan CLI lists them.
using device_list = type_list<devices::rtx4090, devices::rtx3090, devices::l4, devices::a100_40g, devices::a100_80g,
                              devices::h100_80g, devices::host_default>;

template <device_descriptor D>
constexpr device_info device_info_of() {
  return device_info{D::name,          D::description,           D::kind,
                     D::memory_bytes,  D::nvidia_smi_bytes,      D::bandwidth_gbps,
                     D::bf16_tflops,   D::sm_arch,               D::context_reserve_bytes,
                     D::blas_workspace_bytes};
}

namespace detail {
template <class... Ds>
constexpr auto device_infos(type_list<Ds...>) {
  return std::array<device_info, sizeof...(Ds)>{device_info_of<Ds>()...};
}
}  // namespace detail

inline constexpr auto all_devices = detail::device_infos(device_list{});

// The device named `name`, or nothing.
constexpr std::optional<device_info> find_device(std::string_view name) {
  for (const device_info& d : all_devices)
    if (d.name == name) return d;
  return std::nullopt;
}

}  // namespace gemmaforge
