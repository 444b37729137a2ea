// The platform part of a backend: how chunk memory is obtained, released, copied and filled on one
// kind of machine. Two implementations: host_backend.cc (an emulated device in host RAM) and
// cuda_backend.cc (CUDA runtime; compiled only with TENSORMEM_WITH_CUDA).
//
// Contracts for implementations:
//  - Allocation throws NativeError: OUT_OF_MEMORY when refused for lack of memory, CUDA_ERROR or
//    SYSTEM_ERROR otherwise; nothing stays allocated when it throws.
//  - Release never throws and is called exactly once per chunk, on the main thread. It may return
//    before the memory is back (the cuda backend frees device chunks on a thread of its own, since
//    cudaFree waits for the device); SettleReleases returns once every release so far is done.
//  - Copy and Fill receive ranges already bounds-checked by BackendCore, may run on a worker thread
//    (concurrently with each other and with allocations), and return only when the bytes are in place.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "chunk_table.h"
#include "host_memory.h"

namespace tensormem {

// Where a copy or fill reads or writes.
enum class MemoryType {
  kDevice,        // a device chunk
  kPinnedHost,    // a host chunk (page-locked on cuda)
  kPageableHost,  // a JS buffer
};

struct Location {
  void* ptr = nullptr;
  MemoryType type = MemoryType::kPageableHost;
  int device = -1;  // for kDevice
};

struct DeviceInfo {
  std::string name;
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  std::string compute_capability;  // "major.minor", or "emulated"
};

constexpr size_t kIpcHandleBytes = 64;  // sizeof(cudaIpcMemHandle_t)
using IpcHandle = std::array<uint8_t, kIpcHandleBytes>;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* name() const = 0;  // "cuda" | "host"
  virtual int DeviceCount() const = 0;
  // device is in [0, DeviceCount()).
  virtual DeviceInfo QueryDevice(int device) = 0;

  // bytes > 0; device is in [0, DeviceCount()).
  virtual void* AllocDevice(int device, uint64_t bytes) = 0;
  // bytes > 0; shm_name empty or a POSIX shared-memory name ("/name").
  virtual void* AllocHost(uint64_t bytes, const std::string& shm_name) = 0;
  // A host chunk backed by a file (host_memory.h MapFile: same arguments and errors); the chunk's
  // file_path is set, so that Release knows to UnmapFile it.
  virtual FileMapping MapFile(const std::string& path, uint64_t create_bytes, bool delete_on_free) = 0;
  virtual void Release(const Chunk& chunk) noexcept = 0;
  virtual void SettleReleases() {}

  // dst and src do not overlap.
  virtual void Copy(const Location& dst, const Location& src, uint64_t bytes) = 0;
  virtual void Fill(const Location& dst, uint8_t value, uint64_t bytes) = 0;

  // A cudaIpcMemHandle_t for a device chunk; UNSUPPORTED where there is no such thing.
  virtual IpcHandle ExportIpcHandle(const Chunk& chunk) = 0;
  // Maps another process's device allocation from its IPC handle (cudaIpcOpenMemHandle); the chunk
  // made of it has ipc_opened set, so that Release closes the mapping instead of freeing the memory.
  // UNSUPPORTED where there is no such thing.
  virtual void* OpenIpcHandle(int device, const IpcHandle& handle) = 0;
};

struct HostBackendOptions {
  int device_count = 1;
  uint64_t device_capacity_bytes = 0;  // per emulated device
  std::string device_name = "tensormem emulated device";
};

std::unique_ptr<Backend> CreateHostBackend(const HostBackendOptions& options);

#ifdef TENSORMEM_WITH_CUDA
// Throws CUDA_ERROR ("CUDA backend unavailable: ...") when the runtime finds no usable device.
std::unique_ptr<Backend> CreateCudaBackend();
// CUDART_VERSION the addon was compiled against (e.g. 13000).
int CudaRuntimeVersion();
#endif

}  // namespace tensormem
