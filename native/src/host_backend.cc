// The `host` backend: an emulated device in host RAM, so that everything above the addon runs on
// machines without a GPU. Each emulated device has a fixed capacity; its free bytes are the capacity
// minus its live device chunks, and an allocation beyond it is refused with OUT_OF_MEMORY.
#include <cstring>
#include <mutex>
#include <vector>

#include "backend.h"
#include "host_memory.h"
#include "native_error.h"

namespace tensormem {
namespace {

class HostBackend final : public Backend {
 public:
  explicit HostBackend(const HostBackendOptions& options)
      : options_(options), used_bytes_(static_cast<size_t>(options.device_count), 0) {}

  const char* name() const override { return "host"; }
  int DeviceCount() const override { return options_.device_count; }

  DeviceInfo QueryDevice(int device) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint64_t used = used_bytes_[static_cast<size_t>(device)];
    return DeviceInfo{options_.device_name, options_.device_capacity_bytes, options_.device_capacity_bytes - used, "emulated"};
  }

  void* AllocDevice(int device, uint64_t bytes) override {
    Reserve(device, bytes);
    try {
      return MapAnonymous(bytes);
    } catch (...) {
      Unreserve(device, bytes);
      throw;
    }
  }

  void* AllocHost(uint64_t bytes, const std::string& shm_name) override {
    return shm_name.empty() ? MapAnonymous(bytes) : MapShared(shm_name, bytes);
  }

  FileMapping MapFile(const std::string& path, uint64_t create_bytes, bool delete_on_free) override {
    return tensormem::MapFile(path, create_bytes, delete_on_free);
  }

  void Release(const Chunk& chunk) noexcept override {
    if (!chunk.file_path.empty()) {
      UnmapFile(chunk.ptr, chunk.bytes);
    } else if (!chunk.shm_name.empty()) {
      UnmapShared(chunk.shm_name, chunk.ptr, chunk.bytes);
    } else {
      UnmapAnonymous(chunk.ptr, chunk.bytes);
    }
    if (chunk.kind == ChunkKind::kDevice) Unreserve(chunk.device, chunk.bytes);
  }

  void Copy(const Location& dst, const Location& src, uint64_t bytes) override {
    std::memcpy(dst.ptr, src.ptr, bytes);
  }

  void Fill(const Location& dst, uint8_t value, uint64_t bytes) override {
    std::memset(dst.ptr, value, bytes);
  }

  IpcHandle ExportIpcHandle(const Chunk& chunk) override {
    throw NativeError(ErrorCode::kUnsupported, "chunk " + std::to_string(chunk.handle) +
                                                   ": CUDA IPC handles exist only on the cuda backend (host chunks are exported by shmName)");
  }

  void* OpenIpcHandle(int, const IpcHandle&) override {
    throw NativeError(ErrorCode::kUnsupported, "CUDA IPC handles can be opened only on the cuda backend (host chunks are shared by shmName)");
  }

 private:
  // Counts bytes against the emulated device's capacity, or refuses with the numbers.
  void Reserve(int device, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t& used = used_bytes_[static_cast<size_t>(device)];
    const uint64_t capacity = options_.device_capacity_bytes;
    if (bytes > capacity - used) {
      throw NativeError(ErrorCode::kOutOfMemory,
                        "emulated device " + std::to_string(device) + " (" + options_.device_name + ") cannot allocate " + DescribeBytes(bytes) +
                            ": capacity " + DescribeBytes(capacity) + ", used " + DescribeBytes(used) + ", free " + DescribeBytes(capacity - used));
    }
    used += bytes;
  }

  void Unreserve(int device, uint64_t bytes) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    used_bytes_[static_cast<size_t>(device)] -= bytes;
  }

  const HostBackendOptions options_;
  std::mutex mutex_;
  std::vector<uint64_t> used_bytes_;  // per device, bytes of live device chunks
};

}  // namespace

std::unique_ptr<Backend> CreateHostBackend(const HostBackendOptions& options) { return std::make_unique<HostBackend>(options); }

}  // namespace tensormem
