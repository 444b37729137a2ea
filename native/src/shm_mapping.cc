#include "shm_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "js_interop.h"
#include "native_error.h"

namespace tensormem {
namespace {

// One mapping; shared by its ArrayBuffer's finalizer and the async operations copying its bytes
// (PinSharedMemoryMapping), unmapped at most once: when it is unmapped (explicitly or by the finalizer)
// while operations pin it, the munmap waits for the last of them. Fields are guarded by LiveMappings' lock.
struct Mapping {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool unmapped = false;       // munmap done
  bool unmap_pending = false;  // no longer live: munmap when the last pin goes
  uint32_t pins = 0;
};

// Live mappings by address, so that unmapSharedMemory can find the one behind an ArrayBuffer. Shared
// by every environment (worker threads), hence the lock; leaked on purpose (outlives static destructors).
class LiveMappings {
 public:
  static LiveMappings& Get() {
    static auto* mappings = new LiveMappings();
    return *mappings;
  }

  void Add(const std::shared_ptr<Mapping>& mapping) {
    std::lock_guard<std::mutex> lock(mutex_);
    by_address_[reinterpret_cast<uintptr_t>(mapping->ptr)] = mapping;
  }

  // Unmaps the live mapping at ptr (if it is `expected`, or any when expected is null), now or, while
  // operations pin it, when the last one ends; true if it was live.
  bool Unmap(void* ptr, const Mapping* expected) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_address_.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == by_address_.end() || (expected != nullptr && it->second.get() != expected)) return false;
    Mapping& mapping = *it->second;
    if (mapping.pins > 0) {
      mapping.unmap_pending = true;
    } else {
      munmap(mapping.ptr, mapping.bytes);
      mapping.unmapped = true;
    }
    by_address_.erase(it);
    return true;
  }

  // The live mapping that holds [ptr, ptr + bytes), pinned; null when none does.
  std::shared_ptr<Mapping> Pin(const void* ptr, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    const uintptr_t start = reinterpret_cast<uintptr_t>(ptr);
    auto it = by_address_.upper_bound(start);
    if (it == by_address_.begin()) return nullptr;
    --it;
    Mapping& mapping = *it->second;
    if (start - it->first > mapping.bytes || bytes > mapping.bytes - (start - it->first)) return nullptr;
    ++mapping.pins;
    return it->second;
  }

  void Unpin(const std::shared_ptr<Mapping>& mapping) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--mapping->pins > 0 || !mapping->unmap_pending) return;
    munmap(mapping->ptr, mapping->bytes);
    mapping->unmap_pending = false;
    mapping->unmapped = true;
  }

 private:
  std::mutex mutex_;
  std::map<uintptr_t, std::shared_ptr<Mapping>> by_address_;
};

void CheckName(Napi::Env env, const std::string& name) {
  if (name.size() < 2 || name.size() > 255 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.find('\0') != std::string::npos) {
    throw Napi::RangeError::New(env, "Expected a shared-memory name (\"/\" followed by 1 to 254 characters without \"/\") for name but received \"" + name + "\"");
  }
}

std::shared_ptr<Mapping> MapByName(const std::string& name, bool writable) {
  const std::string what = "shared-memory object \"" + name + "\"";
  const int fd = shm_open(name.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
  if (fd < 0) throw SystemError("shm_open of " + what, errno);
  struct stat status;
  if (fstat(fd, &status) != 0) {
    const int error = errno;
    close(fd);
    throw SystemError("fstat of " + what, error);
  }
  if (status.st_size <= 0) {
    close(fd);
    throw NativeError(ErrorCode::kSystemError, "cannot map " + what + ": it is empty");
  }
  const size_t bytes = static_cast<size_t>(status.st_size);
  // A read-only mapping is private and writable: JS cannot make an ArrayBuffer read-only, and a store
  // into PROT_READ memory would kill the process (SIGSEGV) instead of failing. A private page that is
  // written becomes this process's own copy, so such stores never reach the object; pages not written
  // keep showing the object's bytes.
  void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, writable ? MAP_SHARED : MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  close(fd);  // the mapping keeps the object alive
  if (ptr == MAP_FAILED) throw SystemError("mmap of " + DescribeBytes(bytes) + " of " + what, mmap_errno);
  auto mapping = std::make_shared<Mapping>();
  mapping->ptr = ptr;
  mapping->bytes = bytes;
  try {
    LiveMappings::Get().Add(mapping);
  } catch (...) {
    munmap(ptr, bytes);
    throw;
  }
  return mapping;
}

// The ArrayBuffer's share of the mapping: unmaps it if still live (a no-op once unmapSharedMemory did).
void FinalizeMapping(Napi::Env, void* data, std::shared_ptr<Mapping>* mapping) {
  LiveMappings::Get().Unmap(data, mapping->get());
  delete mapping;
}

Napi::Value MapSharedMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a string for name");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    CheckName(env, name);
    if (!info[1].IsBoolean()) throw Napi::TypeError::New(env, "Expected a boolean for writable");
    auto mapping = std::make_unique<std::shared_ptr<Mapping>>(MapByName(name, info[1].As<Napi::Boolean>().Value()));
    const Mapping* raw = mapping->get();
    try {
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, raw->ptr, raw->bytes, FinalizeMapping, mapping.get());
      mapping.release();  // the finalizer's now
      return buffer;
    } catch (...) {
      LiveMappings::Get().Unmap(raw->ptr, raw);
      throw;
    }
  });
}

Napi::Value UnmapSharedMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "Expected the ArrayBuffer returned by mapSharedMemory for arrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  void* ptr = buffer.Data();
  if (ptr == nullptr || buffer.IsDetached()) return Napi::Boolean::New(env, false);
  // Only a live mapping is detached: detaching some other ArrayBuffer would break its owner.
  if (!LiveMappings::Get().Unmap(ptr, nullptr)) return Napi::Boolean::New(env, false);
  buffer.Detach();
  return Napi::Boolean::New(env, true);
}

}  // namespace

std::function<void()> PinSharedMemoryMapping(const void* ptr, size_t bytes) {
  std::shared_ptr<Mapping> mapping = LiveMappings::Get().Pin(ptr, bytes);
  if (!mapping) return {};
  return [mapping] { LiveMappings::Get().Unpin(mapping); };
}

void RegisterSharedMemoryMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("mapSharedMemory", Napi::Function::New(env, MapSharedMemoryJs, "mapSharedMemory"));
  exports.Set("unmapSharedMemory", Napi::Function::New(env, UnmapSharedMemoryJs, "unmapSharedMemory"));
}

}  // namespace tensormem
