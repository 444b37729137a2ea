// The `cuda` backend: device chunks from cudaMalloc, host chunks page-locked (cudaHostAlloc, or a
// shared-memory mapping registered with cudaHostRegister, left pageable where the device does not
// support cudaHostRegister), file-backed host chunks (MMAP workspaces) left pageable, copies through
// cudaMemcpy with cudaMemcpyDefault (unified addressing decides the direction), fills through cudaMemset.
//
// Only host-side runtime calls: this file is compiled by the host compiler and linked against the
// static CUDA runtime, which loads the driver lazily, so a machine without a driver gets a CUDA_ERROR
// from CreateCudaBackend(), not a failure to load the addon.
#include <cuda_runtime_api.h>

#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <vector>

#include "backend.h"
#include "host_memory.h"
#include "native_error.h"
#include "release_queue.h"

static_assert(sizeof(cudaIpcMemHandle_t) == tensormem::kIpcHandleBytes, "cudaIpcMemHandle_t is 64 bytes");

namespace tensormem {
namespace {

// "<what>: cudaErrorX: <description>", code CUDA_ERROR, cudaError = the enum name. Also clears the
// runtime's last-error state so that a later, unrelated call does not report this error again.
NativeError CudaFailure(const std::string& what, cudaError_t error) {
  cudaGetLastError();
  const std::string name = cudaGetErrorName(error);
  return NativeError(ErrorCode::kCudaError, what + ": " + name + ": " + cudaGetErrorString(error), name);
}

void Check(cudaError_t error, const std::string& what) {
  if (error != cudaSuccess) throw CudaFailure(what, error);
}

void SetDevice(int device) { Check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")"); }

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_count) : device_count_(device_count), identities_(static_cast<size_t>(device_count)) {}

  const char* name() const override { return "cuda"; }
  int DeviceCount() const override { return device_count_; }

  DeviceInfo QueryDevice(int device) override {
    DeviceInfo info = DeviceIdentity(device);
    SetDevice(device);
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    Check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo on device " + std::to_string(device));
    info.total_bytes = total_bytes;
    info.free_bytes = free_bytes;
    return info;
  }

  void* AllocDevice(int device, uint64_t bytes) override {
    SetDevice(device);
    void* ptr = nullptr;
    const cudaError_t error = AllocateOrAwaitReleases([&] { return cudaMalloc(&ptr, bytes); });
    if (error == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0;
      size_t total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      cudaGetLastError();
      throw NativeError(ErrorCode::kOutOfMemory, "device " + std::to_string(device) + ": cudaMalloc of " + DescribeBytes(bytes) +
                                                     " refused (cudaErrorMemoryAllocation): free " + DescribeBytes(free_bytes) + ", total " +
                                                     DescribeBytes(total_bytes));
    }
    Check(error, "cudaMalloc of " + DescribeBytes(bytes) + " on device " + std::to_string(device));
    return ptr;
  }

  void* AllocHost(uint64_t bytes, const std::string& shm_name) override {
    if (shm_name.empty()) {
      void* ptr = nullptr;
      const cudaError_t error = AllocateOrAwaitReleases([&] { return cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable); });
      if (error == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        throw NativeError(ErrorCode::kOutOfMemory, "cudaHostAlloc of " + DescribeBytes(bytes) + " pinned host memory refused (cudaErrorMemoryAllocation)");
      }
      Check(error, "cudaHostAlloc of " + DescribeBytes(bytes));
      return ptr;
    }
    void* ptr = MapShared(shm_name, bytes);
    const cudaError_t error = AllocateOrAwaitReleases([&] { return cudaHostRegister(ptr, bytes, cudaHostRegisterPortable); });
    if (error == cudaErrorNotSupported || error == cudaErrorNotPermitted) {
      // No page-locking of existing memory here: a device whose cudaDevAttrHostRegisterSupported is 0,
      // or an H100 in confidential-computing mode, where cudaHostRegister is a forbidden API. The chunk
      // stays pageable, as a MapFile chunk is (cudaMemcpy stages its copies), rather than every
      // shared-memory chunk (each host export) failing. Release must not cudaHostUnregister it.
      cudaGetLastError();
      try {
        std::lock_guard<std::mutex> lock(pageable_shared_mutex_);
        pageable_shared_.insert(ptr);
      } catch (...) {
        UnmapShared(shm_name, ptr, bytes);
        throw;
      }
      return ptr;
    }
    if (error != cudaSuccess) {
      UnmapShared(shm_name, ptr, bytes);
      const std::string what = "cudaHostRegister of shared-memory object \"" + shm_name + "\" (" + DescribeBytes(bytes) + ")";
      if (error == cudaErrorMemoryAllocation) {
        // Out of pinnable memory (RLIMIT_MEMLOCK, or the driver's own limit): an out-of-memory refusal, like cudaHostAlloc's.
        cudaGetLastError();
        throw NativeError(ErrorCode::kOutOfMemory, what + " refused (cudaErrorMemoryAllocation)");
      }
      throw CudaFailure(what, error);
    }
    return ptr;
  }

  FileMapping MapFile(const std::string& path, uint64_t create_bytes, bool delete_on_free) override {
    // Not page-locked (cudaHostRegister): an MMAP workspace's pages belong to its file, for the kernel to
    // write back and drop under pressure, which is why no RAM cap counts them (README). Pinned, a file the
    // size of the RAM would lock it all, outside every cap. Copies to and from the device stage through
    // pageable memory instead (cudaMemcpy does it).
    return tensormem::MapFile(path, create_bytes, delete_on_free);
  }

  // Every release that calls the runtime (cudaFree, cudaIpcCloseMemHandle, cudaFreeHost,
  // cudaHostUnregister: each waits for the device) runs on the release thread (release_queue.h); the
  // rest (a file's or a pageable region's munmap) here.
  void Release(const Chunk& chunk) noexcept override {
    if (chunk.kind == ChunkKind::kHost && !chunk.file_path.empty()) {
      UnmapFile(chunk.ptr, chunk.bytes);
    } else if (chunk.kind == ChunkKind::kHost && !chunk.shm_name.empty() && ForgetPageableShared(chunk.ptr)) {
      UnmapShared(chunk.shm_name, chunk.ptr, chunk.bytes);
    } else {
      ReleaseOnThread(chunk);
    }
  }

  void SettleReleases() override { releases_.WaitIdle(); }

  void Copy(const Location& dst, const Location& src, uint64_t bytes) override {
    const int device = dst.type == MemoryType::kDevice ? dst.device : src.type == MemoryType::kDevice ? src.device : -1;
    if (device < 0) {
      std::memcpy(dst.ptr, src.ptr, bytes);
      return;
    }
    // The runtime's current device is per thread: set it on whichever thread runs the copy.
    SetDevice(device);
    Check(cudaMemcpy(dst.ptr, src.ptr, bytes, cudaMemcpyDefault), "cudaMemcpy of " + DescribeBytes(bytes));
    // Device-to-device cudaMemcpy returns before the copy ends; the contract is "bytes in place".
    Check(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize after cudaMemcpy");
  }

  void Fill(const Location& dst, uint8_t value, uint64_t bytes) override {
    if (dst.type != MemoryType::kDevice) {
      std::memset(dst.ptr, value, bytes);
      return;
    }
    SetDevice(dst.device);
    Check(cudaMemset(dst.ptr, value, bytes), "cudaMemset of " + DescribeBytes(bytes));
    Check(cudaStreamSynchronize(nullptr), "cudaStreamSynchronize after cudaMemset");
  }

  IpcHandle ExportIpcHandle(const Chunk& chunk) override {
    if (chunk.kind != ChunkKind::kDevice) {
      throw NativeError(ErrorCode::kUnsupported,
                        "chunk " + std::to_string(chunk.handle) + " is a host chunk: CUDA IPC handles exist only for device chunks (host chunks are exported by shmName)");
    }
    if (chunk.ipc_opened) {
      // cudaIpcGetMemHandle takes "the base of an existing device memory allocation created with
      // cudaMalloc"; a mapping opened from another process's handle is not one (pass that handle on instead).
      throw NativeError(ErrorCode::kUnsupported, "chunk " + std::to_string(chunk.handle) +
                                                     " was opened from another process's CUDA IPC handle: only allocations of this process can be exported");
    }
    SetDevice(chunk.device);
    cudaIpcMemHandle_t handle;
    const cudaError_t error = cudaIpcGetMemHandle(&handle, chunk.ptr);
    if (error == cudaErrorNotSupported) {
      // No CUDA IPC on this system (WSL, some virtualized or confidential-computing GPUs): a property of
      // the machine, not a failure of the call.
      cudaGetLastError();
      throw NativeError(ErrorCode::kUnsupported, "CUDA IPC is not supported on device " + std::to_string(chunk.device) +
                                                     " (cudaIpcGetMemHandle: cudaErrorNotSupported)");
    }
    Check(error, "cudaIpcGetMemHandle of chunk " + std::to_string(chunk.handle));
    IpcHandle bytes;
    std::memcpy(bytes.data(), &handle, sizeof handle);
    return bytes;
  }

  void* OpenIpcHandle(int device, const IpcHandle& bytes) override {
    SetDevice(device);
    cudaIpcMemHandle_t handle;
    std::memcpy(&handle, bytes.data(), sizeof handle);
    void* ptr = nullptr;
    Check(cudaIpcOpenMemHandle(&ptr, handle, cudaIpcMemLazyEnablePeerAccess), "cudaIpcOpenMemHandle on device " + std::to_string(device));
    return ptr;
  }

 private:
  // The device's name and compute capability, which never change: read once. cudaGetDeviceProperties
  // fills every field of cudaDeviceProp, some through slow driver queries (about 1-2 ms a call on an
  // H100/H200), and QueryDevice runs on the event loop for each device on every GetMemoryInfo,
  // WatchMemory message, metrics scrape and cuDNN workspace budget.
  DeviceInfo DeviceIdentity(int device) {
    std::lock_guard<std::mutex> lock(identity_mutex_);
    std::optional<DeviceInfo>& known = identities_.at(static_cast<size_t>(device));
    if (!known) {
      cudaDeviceProp properties;
      Check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties(" + std::to_string(device) + ")");
      known = DeviceInfo{properties.name, 0, 0, std::to_string(properties.major) + "." + std::to_string(properties.minor)};
    }
    return *known;
  }

  // True when ptr was a shared-memory chunk left pageable (cudaHostRegister not supported); forgets it.
  bool ForgetPageableShared(void* ptr) noexcept {
    std::lock_guard<std::mutex> lock(pageable_shared_mutex_);
    return pageable_shared_.erase(ptr) > 0;
  }

  // Runs an allocation; when the driver refuses it for lack of memory and releases ran or were queued
  // meanwhile (the memory it needs may be on its way back), waits for them and asks once more.
  template <typename Allocate>
  cudaError_t AllocateOrAwaitReleases(const Allocate& allocate) {
    const uint64_t releases_before = releases_.Completed();
    const cudaError_t error = allocate();
    if (error != cudaErrorMemoryAllocation) return error;
    cudaGetLastError();
    releases_.WaitIdle();
    return releases_.Completed() != releases_before ? allocate() : error;
  }

  void ReleaseOnThread(const Chunk& chunk) noexcept {
    // A shared-memory chunk's name goes now, as on the host backend: from the free on, no process can
    // open it (a freed export), while its pages stay mapped until the job has unregistered them.
    const bool shared = chunk.kind == ChunkKind::kHost && !chunk.shm_name.empty();
    if (shared) UnlinkShared(chunk.shm_name);
    // What the job needs, copied: the chunk's table entry is gone when it runs.
    struct Job {
      ChunkKind kind;
      int device;
      void* ptr;
      uint64_t bytes;
      bool ipc_opened;
      bool shared;
    };
    const Job job{chunk.kind, chunk.device, chunk.ptr, chunk.bytes, chunk.ipc_opened, shared};
    try {
      releases_.Post([job] { ReleaseNow(job.kind, job.device, job.ptr, job.bytes, job.ipc_opened, job.shared); });
    } catch (...) {
      // No thread or no memory for the job: here, then.
      ReleaseNow(job.kind, job.device, job.ptr, job.bytes, job.ipc_opened, job.shared);
    }
  }

  static void ReleaseNow(ChunkKind kind, int device, void* ptr, uint64_t bytes, bool ipc_opened, bool shared) noexcept {
    if (kind == ChunkKind::kDevice) {
      cudaSetDevice(device);  // the current device is per thread
      if (ipc_opened) {
        cudaIpcCloseMemHandle(ptr);
      } else {
        cudaFree(ptr);
      }
    } else if (shared) {
      cudaHostUnregister(ptr);
      UnmapSharedPages(ptr, bytes);
    } else {
      cudaFreeHost(ptr);
    }
    cudaGetLastError();  // per thread: a failed release must not surface in this thread's next call
  }

  const int device_count_;
  std::mutex identity_mutex_;
  std::vector<std::optional<DeviceInfo>> identities_;
  // Shared-memory host chunks that cudaHostRegister refused as unsupported: mapped, not page-locked.
  std::mutex pageable_shared_mutex_;
  std::unordered_set<void*> pageable_shared_;
  // Declared last, so destroyed first: its destructor runs the releases still queued, while the rest of
  // the backend is intact.
  ReleaseQueue releases_;
};

}  // namespace

std::unique_ptr<Backend> CreateCudaBackend() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) throw CudaFailure("CUDA backend unavailable", error);
  if (count == 0) throw CudaFailure("CUDA backend unavailable", cudaErrorNoDevice);
  return std::make_unique<CudaBackend>(count);
}

int CudaRuntimeVersion() { return CUDART_VERSION; }

}  // namespace tensormem
