#pragma once
// mapped_file: a read-only memory map of a whole file (RAII, move-only).
// Model weights are used in place: every tensor the CPU backend reads is a view into this
// mapping, so loading costs no copy and the page cache is shared between processes.
// Errors name the file: a missing or unreadable file is errc::io, an empty one errc::format
// (an empty model file is a truncated download, not an I/O failure).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/io/progress.hpp>

namespace gemmaforge {

class mapped_file {
 public:
  mapped_file() = default;

  static mapped_file open(const std::filesystem::path& path) {
    mapped_file m;
    m.path_ = path.string();
    const int fd = ::open(m.path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      if (e == ENOENT) throw error(errc::io, m.path_ + ": no such file");
      throw error(errc::io, m.path_ + ": cannot open: " + std::strerror(e));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      throw error(errc::io, m.path_ + ": cannot stat: " + std::strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      throw error(errc::io, m.path_ + ": is a directory, expected a file");
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw error(errc::io, m.path_ + ": not a regular file");
    }
    if (st.st_size == 0) {
      ::close(fd);
      throw error(errc::format, m.path_ + ": file is empty (0 bytes)");
    }
    m.size_ = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) throw error(errc::io, m.path_ + ": mmap failed: " + std::strerror(e));
    m.data_ = static_cast<const std::byte*>(p);
    return m;
  }

  mapped_file(mapped_file&& o) noexcept
      : path_(std::move(o.path_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_file& operator=(mapped_file&& o) noexcept {
    if (this != &o) {
      unmap();
      path_ = std::move(o.path_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() { unmap(); }

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  bool is_open() const { return data_ != nullptr; }

  // Bring the file into memory now rather than on the first forward pass: ask the kernel to read
  // ahead (MADV_WILLNEED), then touch one byte per page so the faults happen here, with a
  // progress bar when stderr is a terminal. Returns a checksum of the touched bytes so the
  // compiler cannot drop the reads.
  std::uint64_t prefault(bool show_progress = true) const {
    if (!data_) return 0;
    ::madvise(const_cast<std::byte*>(data_), size_, MADV_WILLNEED);
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    progress_bar bar("loading " + std::filesystem::path(path_).filename().string(), size_, show_progress);
    std::uint64_t sum = 0;
    constexpr std::size_t chunk = std::size_t(64) << 20;
    for (std::size_t off = 0; off < size_; off += chunk) {
      const std::size_t end = off + chunk < size_ ? off + chunk : size_;
      for (std::size_t p = off; p < end; p += page) sum += static_cast<std::uint8_t>(data_[p]);
      bar.update(end);
    }
    bar.finish();
    return sum;
  }

 private:
  void unmap() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace gemmaforge
