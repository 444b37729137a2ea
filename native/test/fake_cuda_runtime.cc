// A fake CUDA runtime for checking the cuda backend (src/cuda_backend.cc) on a machine without a GPU:
// the nineteen runtime calls the addon makes, with the preconditions of the CUDA Runtime API checked
// instead of assumed. Built only with -DTENSORMEM_FAKE_CUDA=ON (scripts/fake-cuda-check.sh), never
// shipped. What it enforces, each as the real runtime documents it:
//  - device memory is not host memory: a cudaMalloc pointer is mapped PROT_NONE in the process, so a
//    host memcpy/memset on it is a SIGSEGV, as on a GPU; the runtime calls reach it through a second,
//    shadow mapping;
//  - the current device is per host thread (cudaSetDevice); cudaMemset needs the memory's device to be
//    current (no peer access in this fake); cudaMemGetInfo reports the current device;
//  - cudaFree takes only the base of a live cudaMalloc allocation, cudaIpcCloseMemHandle only a pointer
//    that cudaIpcOpenMemHandle returned, cudaFreeHost only a cudaHostAlloc pointer, cudaHostUnregister
//    only a registered base; cudaHostRegister refuses a range that overlaps a registered one;
//  - cudaIpcGetMemHandle takes only the base of a cudaMalloc allocation of this process;
//    cudaIpcOpenMemHandle needs cudaIpcMemLazyEnablePeerAccess and a handle of another process, and
//    maps the same memory (a POSIX shared-memory object per allocation), reference-counted per handle;
//  - copies and fills stay inside the allocations they touch (cudaErrorInvalidValue otherwise);
//  - every failing call sets the thread's last error, which cudaGetLastError returns and clears.
// Environment: FAKE_CUDA_DEVICES (default 1; 0 = cudaErrorNoDevice), FAKE_CUDA_DEVICE_BYTES (default
// 4 GiB), FAKE_CUDA_NO_DRIVER=1 (cudaErrorInsufficientDriver everywhere), FAKE_CUDA_HOST_REGISTER_FAILS=1
// (cudaHostRegister refused with cudaErrorNotSupported), FAKE_CUDA_DEVICE_PROPERTIES_US=N (each
// cudaGetDeviceProperties takes N microseconds, as the real one takes 1-2 ms), FAKE_CUDA_ABORT_ON_MISUSE=1 (a call given what
// the API documents as invalid aborts, naming it, instead of returning the error), FAKE_CUDA_SHARED_USAGE=/name (device memory in
// use counted across processes, as the driver does), FAKE_CUDA_SHM_PREFIX=/prefix- (names of the
// shared-memory objects behind allocations, default /fake-cuda-; a process killed or aborted leaves
// its objects behind), FAKE_CUDA_STICKY_AFTER_COPIES=N (after N cudaMemcpy calls the context is lost, as
// after a kernel's illegal address: every later cudaMemcpy, cudaMemset, cudaMalloc and cudaMemGetInfo
// returns cudaErrorIllegalAddress, a sticky error), FAKE_CUDA_REPORT=1 (at exit, print to stderr what
// is still allocated, registered or open; non-zero counts are leaks only where the process released
// everything it had), FAKE_CUDA_FREE_US=N (each cudaFree first waits N microseconds, as a real one waits for the
// work queued on the device; other threads' calls go on meanwhile, and whether a real driver lets them is
// not modelled), FAKE_CUDA_IPC_UNSUPPORTED=1 (cudaIpcGetMemHandle returns cudaErrorNotSupported, as on a
// system without CUDA IPC).
// What it cannot check: timing, asynchrony (every call completes before it returns, so a missing
// stream synchronization goes unnoticed), peer access, pinned-memory limits, the driver itself.
#include <cuda_runtime_api.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

namespace {

constexpr uint32_t kHandleMagic = 0x46414b45;  // "FAKE"

struct Allocation {
  size_t bytes = 0;
  int device = 0;
  void* shadow = nullptr;  // the same memory, host-accessible, for the runtime's own use
  std::string shm_name;
  bool ipc_opened = false;
  int ipc_refs = 0;
};

struct HostRange {
  size_t bytes = 0;
  bool allocated = false;  // cudaHostAlloc (true) or cudaHostRegister (false)
};

struct IpcHandleBody {
  uint32_t magic;
  int32_t pid;
  uint64_t bytes;
  char shm_name[44];
};
static_assert(sizeof(IpcHandleBody) <= sizeof(cudaIpcMemHandle_t), "fits the 64-byte handle");

std::mutex& Mutex() {
  static std::mutex mutex;
  return mutex;
}
std::map<uintptr_t, Allocation>& Allocations() {
  static auto* allocations = new std::map<uintptr_t, Allocation>();
  return *allocations;
}
std::map<uintptr_t, HostRange>& HostRanges() {
  static auto* ranges = new std::map<uintptr_t, HostRange>();
  return *ranges;
}
std::map<std::string, uintptr_t>& OpenedByName() {
  static auto* opened = new std::map<std::string, uintptr_t>();
  return *opened;
}
// Device memory in use, per device. With FAKE_CUDA_SHARED_USAGE=/name, counted in that POSIX
// shared-memory object for every process that names it (the driver's view: cudaMemGetInfo in one
// process sees another's cudaMalloc), else in this process only.
constexpr int kMaxDevices = 64;
std::atomic<uint64_t>* UsedCounters() {
  static std::atomic<uint64_t>* counters = [] {
    const char* name = std::getenv("FAKE_CUDA_SHARED_USAGE");
    const size_t bytes = sizeof(std::atomic<uint64_t>) * kMaxDevices;
    if (name != nullptr && *name != '\0') {
      const int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
      if (fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
        void* shared = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (shared != MAP_FAILED) return static_cast<std::atomic<uint64_t>*>(shared);
      }
    }
    return new std::atomic<uint64_t>[kMaxDevices]();
  }();
  return counters;
}

thread_local int current_device = 0;
thread_local cudaError_t last_error = cudaSuccess;
std::atomic<uint64_t> next_object{0};

long EnvLong(const char* name, long fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtol(text, nullptr, 10) : fallback;
}
int DeviceCount() { return std::min(static_cast<int>(EnvLong("FAKE_CUDA_DEVICES", 1)), 64); }
size_t DeviceBytes() { return static_cast<size_t>(EnvLong("FAKE_CUDA_DEVICE_BYTES", 4L << 30)); }
bool NoDriver() { return EnvLong("FAKE_CUDA_NO_DRIVER", 0) != 0; }

cudaError_t Fail(cudaError_t error) {
  last_error = error;
  return error;
}

// FAKE_CUDA_STICKY_AFTER_COPIES: cudaMemcpy calls so far, and whether the context is lost (sticky).
std::atomic<long> copies_made{0};
bool ContextLost() {
  const long after = EnvLong("FAKE_CUDA_STICKY_AFTER_COPIES", 0);
  return after > 0 && copies_made.load() >= after;
}

// A call the Runtime API documents as invalid for what it was given (a pointer that is not what the call
// takes, a range outside an allocation). The addon ignores the errors of its release calls, so such a
// bug would pass unseen: with FAKE_CUDA_ABORT_ON_MISUSE=1 the process says what and aborts instead.
cudaError_t Misuse(cudaError_t error, const char* call, const void* ptr) {
  if (EnvLong("FAKE_CUDA_ABORT_ON_MISUSE", 0) != 0) {
    std::fprintf(stderr, "fake-cuda[%d]: %s(%p) misused (%s): aborting\n", static_cast<int>(getpid()), call, ptr, cudaGetErrorName(error));
    std::abort();
  }
  return Fail(error);
}

// The allocation containing [ptr, ptr + bytes), or nullptr when ptr is no device memory. Requires Mutex().
Allocation* Find(const void* ptr, size_t bytes, uintptr_t* base, bool* in_range) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(ptr);
  auto& allocations = Allocations();
  auto it = allocations.upper_bound(address);
  if (it == allocations.begin()) return nullptr;
  --it;
  if (address >= it->first + it->second.bytes) return nullptr;
  *base = it->first;
  *in_range = bytes <= it->first + it->second.bytes - address;
  return &it->second;
}

// Maps the shared-memory object twice: PROT_NONE (the "device pointer") and read-write (the shadow).
cudaError_t MapDeviceMemory(const std::string& name, size_t bytes, bool create, void** device_ptr, void** shadow) {
  const int fd = shm_open(name.c_str(), create ? (O_CREAT | O_EXCL | O_RDWR) : O_RDWR, 0600);
  if (fd < 0) return create ? cudaErrorMemoryAllocation : cudaErrorInvalidResourceHandle;
  if (create && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    close(fd);
    shm_unlink(name.c_str());
    return cudaErrorMemoryAllocation;
  }
  *device_ptr = mmap(nullptr, bytes, PROT_NONE, MAP_SHARED, fd, 0);
  *shadow = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (*device_ptr == MAP_FAILED || *shadow == MAP_FAILED) {
    if (*device_ptr != MAP_FAILED) munmap(*device_ptr, bytes);
    if (*shadow != MAP_FAILED) munmap(*shadow, bytes);
    if (create) shm_unlink(name.c_str());
    return cudaErrorMemoryAllocation;
  }
  return cudaSuccess;
}

// At exit: the shared-memory names behind live allocations are unlinked (they would outlive the process),
// and with FAKE_CUDA_REPORT=1 what is still live is printed.
struct AtExit {
  AtExit() {
    std::atexit([] {
      std::lock_guard<std::mutex> lock(Mutex());
      size_t allocated = 0, opened = 0, host_allocated = 0, registered = 0;
      for (const auto& [base, allocation] : Allocations()) {
        (allocation.ipc_opened ? opened : allocated)++;
        if (!allocation.ipc_opened) shm_unlink(allocation.shm_name.c_str());
      }
      for (const auto& [base, range] : HostRanges()) (range.allocated ? host_allocated : registered)++;
      if (EnvLong("FAKE_CUDA_REPORT", 0) != 0) {
        std::fprintf(stderr, "fake-cuda[%d]: at exit: %zu cudaMalloc allocations, %zu IPC mappings, %zu cudaHostAlloc, %zu cudaHostRegister still live\n",
                     static_cast<int>(getpid()), allocated, opened, host_allocated, registered);
      }
    });
  }
} at_exit;

}  // namespace

extern "C" {

cudaError_t cudaGetLastError() {
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorDeviceUninitialized: return "cudaErrorDeviceUninitialized";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorHostMemoryAlreadyRegistered: return "cudaErrorHostMemoryAlreadyRegistered";
    case cudaErrorHostMemoryNotRegistered: return "cudaErrorHostMemoryNotRegistered";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: return "fake CUDA runtime error";
  }
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  *count = 0;
  if (DeviceCount() <= 0) return Fail(cudaErrorNoDevice);
  *count = DeviceCount();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  if (device < 0 || device >= DeviceCount()) return Fail(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  // The real call is slow (it fills every field, some through driver queries: about 1-2 ms on an H100/H200).
  if (const long micros = EnvLong("FAKE_CUDA_DEVICE_PROPERTIES_US", 0); micros > 0) usleep(static_cast<useconds_t>(micros));
  if (device < 0 || device >= DeviceCount()) return Fail(cudaErrorInvalidDevice);
  std::memset(properties, 0, sizeof *properties);
  std::snprintf(properties->name, sizeof properties->name, "Fake CUDA device %d", device);
  properties->major = 9;
  properties->minor = 0;
  properties->totalGlobalMem = DeviceBytes();
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  if (ContextLost()) return Fail(cudaErrorIllegalAddress);
  std::lock_guard<std::mutex> lock(Mutex());
  const size_t used = UsedCounters()[current_device].load();
  *total_bytes = DeviceBytes();
  *free_bytes = DeviceBytes() - used;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  if (ContextLost()) return Fail(cudaErrorIllegalAddress);
  std::lock_guard<std::mutex> lock(Mutex());
  std::atomic<uint64_t>& used = UsedCounters()[current_device];
  if (bytes == 0) {
    *ptr = nullptr;
    return cudaSuccess;
  }
  if (bytes > DeviceBytes() - used.load()) return Fail(cudaErrorMemoryAllocation);
  const char* prefix = std::getenv("FAKE_CUDA_SHM_PREFIX");
  const std::string name = std::string(prefix != nullptr && *prefix == '/' ? prefix : "/fake-cuda-") + std::to_string(getpid()) + "-" + std::to_string(next_object++);
  void* device_ptr = nullptr;
  void* shadow = nullptr;
  const cudaError_t error = MapDeviceMemory(name, bytes, true, &device_ptr, &shadow);
  if (error != cudaSuccess) return Fail(error);
  Allocation allocation;
  allocation.bytes = bytes;
  allocation.device = current_device;
  allocation.shadow = shadow;
  allocation.shm_name = name;
  Allocations()[reinterpret_cast<uintptr_t>(device_ptr)] = allocation;
  used += bytes;
  *ptr = device_ptr;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  if (const long micros = EnvLong("FAKE_CUDA_FREE_US", 0); micros > 0) usleep(static_cast<useconds_t>(micros));
  std::lock_guard<std::mutex> lock(Mutex());
  auto it = Allocations().find(reinterpret_cast<uintptr_t>(ptr));
  if (it == Allocations().end() || it->second.ipc_opened) return Misuse(cudaErrorInvalidValue, "cudaFree", ptr);
  munmap(ptr, it->second.bytes);
  munmap(it->second.shadow, it->second.bytes);
  shm_unlink(it->second.shm_name.c_str());
  UsedCounters()[it->second.device] -= it->second.bytes;
  Allocations().erase(it);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int /* flags */) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return Fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(Mutex());
  HostRanges()[reinterpret_cast<uintptr_t>(memory)] = HostRange{bytes, true};
  *ptr = memory;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  std::lock_guard<std::mutex> lock(Mutex());
  auto it = HostRanges().find(reinterpret_cast<uintptr_t>(ptr));
  if (it == HostRanges().end() || !it->second.allocated) return Misuse(cudaErrorInvalidValue, "cudaFreeHost", ptr);
  munmap(ptr, it->second.bytes);
  HostRanges().erase(it);
  return cudaSuccess;
}

cudaError_t cudaHostRegister(void* ptr, size_t bytes, unsigned int /* flags */) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  if (EnvLong("FAKE_CUDA_HOST_REGISTER_FAILS", 0) != 0) return Fail(cudaErrorNotSupported);
  if (ptr == nullptr || bytes == 0) return Fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(Mutex());
  const uintptr_t address = reinterpret_cast<uintptr_t>(ptr);
  uintptr_t base = 0;
  bool in_range = false;
  if (Find(ptr, bytes, &base, &in_range) != nullptr) return Misuse(cudaErrorInvalidValue, "cudaHostRegister", ptr);  // device memory
  auto& ranges = HostRanges();
  auto next = ranges.lower_bound(address);
  if (next != ranges.end() && next->first < address + bytes) return Misuse(cudaErrorHostMemoryAlreadyRegistered, "cudaHostRegister", ptr);
  if (next != ranges.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second.bytes > address) return Misuse(cudaErrorHostMemoryAlreadyRegistered, "cudaHostRegister", ptr);
  }
  ranges[address] = HostRange{bytes, false};
  return cudaSuccess;
}

cudaError_t cudaHostUnregister(void* ptr) {
  std::lock_guard<std::mutex> lock(Mutex());
  auto it = HostRanges().find(reinterpret_cast<uintptr_t>(ptr));
  if (it == HostRanges().end() || it->second.allocated) return Misuse(cudaErrorHostMemoryNotRegistered, "cudaHostUnregister", ptr);
  HostRanges().erase(it);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  if (ContextLost()) return Fail(cudaErrorIllegalAddress);
  if (kind != cudaMemcpyDefault) return Misuse(cudaErrorInvalidValue, "cudaMemcpy", dst);  // the addon only uses Default
  if (bytes == 0) return cudaSuccess;
  void* to = dst;
  const void* from = src;
  {
    std::lock_guard<std::mutex> lock(Mutex());
    uintptr_t base = 0;
    bool in_range = false;
    if (Allocation* allocation = Find(dst, bytes, &base, &in_range)) {
      if (!in_range) return Misuse(cudaErrorInvalidValue, "cudaMemcpy", dst);
      to = static_cast<uint8_t*>(allocation->shadow) + (reinterpret_cast<uintptr_t>(dst) - base);
    }
    if (Allocation* allocation = Find(src, bytes, &base, &in_range)) {
      if (!in_range) return Misuse(cudaErrorInvalidValue, "cudaMemcpy", src);
      from = static_cast<const uint8_t*>(allocation->shadow) + (reinterpret_cast<uintptr_t>(src) - base);
    }
  }
  std::memmove(to, from, bytes);
  copies_made++;
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  if (ContextLost()) return Fail(cudaErrorIllegalAddress);
  if (bytes == 0) return cudaSuccess;
  void* target = nullptr;
  {
    std::lock_guard<std::mutex> lock(Mutex());
    uintptr_t base = 0;
    bool in_range = false;
    Allocation* allocation = Find(ptr, bytes, &base, &in_range);
    // Device memory of the current device only: a memset runs on the current device's stream.
    if (allocation == nullptr || !in_range || allocation->device != current_device) return Misuse(cudaErrorInvalidValue, "cudaMemset", ptr);
    target = static_cast<uint8_t*>(allocation->shadow) + (reinterpret_cast<uintptr_t>(ptr) - base);
  }
  std::memset(target, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t /* stream */) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  return cudaSuccess;
}

cudaError_t cudaIpcGetMemHandle(cudaIpcMemHandle_t* handle, void* ptr) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  std::lock_guard<std::mutex> lock(Mutex());
  auto it = Allocations().find(reinterpret_cast<uintptr_t>(ptr));
  // "the base of an existing device memory allocation created with cudaMalloc"
  if (it == Allocations().end() || it->second.ipc_opened) return Misuse(cudaErrorInvalidValue, "cudaIpcGetMemHandle", ptr);
  if (EnvLong("FAKE_CUDA_IPC_UNSUPPORTED", 0) != 0) return Fail(cudaErrorNotSupported);
  IpcHandleBody body{};
  body.magic = kHandleMagic;
  body.pid = static_cast<int32_t>(getpid());
  body.bytes = it->second.bytes;
  std::snprintf(body.shm_name, sizeof body.shm_name, "%s", it->second.shm_name.c_str());
  std::memset(handle, 0, sizeof *handle);
  std::memcpy(handle, &body, sizeof body);
  return cudaSuccess;
}

cudaError_t cudaIpcOpenMemHandle(void** ptr, cudaIpcMemHandle_t handle, unsigned int flags) {
  if (NoDriver()) return Fail(cudaErrorInsufficientDriver);
  if (flags != cudaIpcMemLazyEnablePeerAccess) return Misuse(cudaErrorInvalidValue, "cudaIpcOpenMemHandle", nullptr);
  IpcHandleBody body;
  std::memcpy(&body, &handle, sizeof body);
  if (body.magic != kHandleMagic) return Fail(cudaErrorInvalidResourceHandle);
  if (body.pid == static_cast<int32_t>(getpid())) return Fail(cudaErrorDeviceUninitialized);
  body.shm_name[sizeof body.shm_name - 1] = '\0';
  const std::string name = body.shm_name;
  std::lock_guard<std::mutex> lock(Mutex());
  auto opened = OpenedByName().find(name);
  if (opened != OpenedByName().end()) {
    Allocations()[opened->second].ipc_refs++;
    *ptr = reinterpret_cast<void*>(opened->second);
    return cudaSuccess;
  }
  void* device_ptr = nullptr;
  void* shadow = nullptr;
  const cudaError_t error = MapDeviceMemory(name, body.bytes, false, &device_ptr, &shadow);
  if (error != cudaSuccess) return Fail(error);
  Allocation allocation;
  allocation.bytes = body.bytes;
  allocation.device = current_device;
  allocation.shadow = shadow;
  allocation.shm_name = name;
  allocation.ipc_opened = true;
  allocation.ipc_refs = 1;
  Allocations()[reinterpret_cast<uintptr_t>(device_ptr)] = allocation;
  OpenedByName()[name] = reinterpret_cast<uintptr_t>(device_ptr);
  *ptr = device_ptr;
  return cudaSuccess;
}

cudaError_t cudaIpcCloseMemHandle(void* ptr) {
  std::lock_guard<std::mutex> lock(Mutex());
  auto it = Allocations().find(reinterpret_cast<uintptr_t>(ptr));
  if (it == Allocations().end() || !it->second.ipc_opened) return Misuse(cudaErrorInvalidValue, "cudaIpcCloseMemHandle", ptr);
  if (--it->second.ipc_refs > 0) return cudaSuccess;
  munmap(ptr, it->second.bytes);
  munmap(it->second.shadow, it->second.bytes);
  OpenedByName().erase(it->second.shm_name);
  Allocations().erase(it);
  return cudaSuccess;
}

}  // extern "C"
