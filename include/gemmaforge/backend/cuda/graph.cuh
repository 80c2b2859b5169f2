#pragma once
// decode_graphs: the decode step captured once per batch size as a CUDA graph, replayed afterwards.
//
// A decode step with B sequences launches the same kernels with the same arguments every time:
// buffers are fixed views into the arena, and everything that changes per step (token ids,
// positions, block tables, sequence lengths) is read by the kernels from the step description the
// executor uploads before the graph runs (step_meta.cuh). Split-K attention launches a grid sized
// by the longest possible context, not the current one, for the same reason.
//
// Policy per batch size: the first step runs eagerly (it loads modules lazily and sets kernel
// attributes, which must not happen inside a capture), the second is captured and instantiated,
// every later one replays. cuda_executor::run_step is the one caller: it wraps the forward pass's
// ops, so no op knows whether it is being captured or skipped. Instantiation happens in the first few steps of each batch size, not on
// a steady-state step; graphs are destroyed with the executor.
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/macros.hpp>

namespace gemmaforge::cuda {

class decode_graphs {
 public:
  enum class mode : std::uint8_t { eager, capture, replay };

  decode_graphs() = default;
  decode_graphs(const decode_graphs&) = delete;
  decode_graphs& operator=(const decode_graphs&) = delete;
  ~decode_graphs() { clear(); }

  void resize(int max_batch) {
    clear();
    entries_.assign(std::size_t(max_batch) + 1, entry{});
  }

  // What to do with a decode step of `batch` sequences.
  mode plan(int batch) {
    if (batch <= 0 || std::size_t(batch) >= entries_.size()) return mode::eager;
    entry& e = entries_[std::size_t(batch)];
    if (e.exec) return mode::replay;
    if (e.eager_runs++ == 0) return mode::eager;
    return mode::capture;
  }

  void begin_capture(cudaStream_t s) {
    GF_CHECK_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    open_capture() = {s, true};
  }

  // Ends the capture of `batch`'s step and instantiates it.
  void end_capture(int batch, cudaStream_t s) {
    cudaGraph_t g = nullptr;
    open_capture() = {};
    GF_CHECK_CUDA(cudaStreamEndCapture(s, &g));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    GF_CHECK_CUDA(e);
    entries_[std::size_t(batch)].exec = exec;
    ++captures_;
  }

  void launch(int batch, cudaStream_t s) {
    GF_CHECK_CUDA(cudaGraphLaunch(entries_[std::size_t(batch)].exec, s));
    ++replays_;
  }

  // After a failed step: a capture left open is closed and dropped.
  static void abandon_capture(cudaStream_t s) noexcept {
    if (open_capture().open && open_capture().stream == s) open_capture() = {};
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone) {
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(s, &g);
      if (g) cudaGraphDestroy(g);
    }
    cudaGetLastError();
  }

  // The capture this thread left open when a step threw, if any, closed and dropped. Whatever runs
  // between steps and synchronizes the device (kv_pool's ring copies at admission) calls this
  // first: cudaDeviceSynchronize during a capture fails, and the engine's admission is outside
  // the step's error handling (review finding C12).
  static void abandon_open_capture() noexcept {
    if (open_capture().open) abandon_capture(open_capture().stream);
  }

  std::uint64_t captures() const { return captures_; }
  std::uint64_t replays() const { return replays_; }

  void clear() noexcept {
    for (entry& e : entries_)
      if (e.exec) cudaGraphExecDestroy(e.exec);
    entries_.clear();
  }

 private:
  struct open_state {
    cudaStream_t stream{};
    bool open = false;
  };
  static open_state& open_capture() noexcept {
    thread_local open_state st;
    return st;
  }
  struct entry {
    cudaGraphExec_t exec = nullptr;
    int eager_runs = 0;
  };
  std::vector<entry> entries_;
  std::uint64_t captures_ = 0, replays_ = 0;
};

}  // namespace gemmaforge::cuda
