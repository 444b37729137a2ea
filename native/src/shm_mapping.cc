#include "shm_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <unordered_map>

#include "js_interop.h"
#include "native_error.h"

namespace tensormem {
namespace {

// One mapping; owned by its ArrayBuffer's finalizer (deleted there), unmapped at most once.
struct Mapping {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool unmapped = false;
};

// Live mappings by address, so that unmapSharedMemory can find the one behind an ArrayBuffer. Shared
// by every environment (worker threads), hence the lock; leaked on purpose (outlives static destructors).
class LiveMappings {
 public:
  static LiveMappings& Get() {
    static auto* mappings = new LiveMappings();
    return *mappings;
  }

  void Add(Mapping* mapping) {
    std::lock_guard<std::mutex> lock(mutex_);
    by_address_[mapping->ptr] = mapping;
  }

  // Unmaps the live mapping at ptr (if it is `expected`, or any when expected is null); true if it did.
  bool Unmap(void* ptr, Mapping* expected) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_address_.find(ptr);
    if (it == by_address_.end() || (expected != nullptr && it->second != expected)) return false;
    Mapping* mapping = it->second;
    munmap(mapping->ptr, mapping->bytes);
    mapping->unmapped = true;
    by_address_.erase(it);
    return true;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<void*, Mapping*> by_address_;
};

void CheckName(Napi::Env env, const std::string& name) {
  if (name.size() < 2 || name.size() > 255 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.find('\0') != std::string::npos) {
    throw Napi::RangeError::New(env, "Expected a shared-memory name (\"/\" followed by 1 to 254 characters without \"/\") for name but received \"" + name + "\"");
  }
}

Mapping* MapByName(const std::string& name, bool writable) {
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
  auto* mapping = new Mapping{ptr, bytes, false};
  LiveMappings::Get().Add(mapping);
  return mapping;
}

void FinalizeMapping(Napi::Env, void* data, Mapping* mapping) {
  if (!mapping->unmapped) LiveMappings::Get().Unmap(data, mapping);
  delete mapping;
}

Napi::Value MapSharedMemoryJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a string for name");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    CheckName(env, name);
    if (!info[1].IsBoolean()) throw Napi::TypeError::New(env, "Expected a boolean for writable");
    Mapping* mapping = MapByName(name, info[1].As<Napi::Boolean>().Value());
    try {
      return Napi::ArrayBuffer::New(env, mapping->ptr, mapping->bytes, FinalizeMapping, mapping);
    } catch (...) {
      LiveMappings::Get().Unmap(mapping->ptr, mapping);
      delete mapping;
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

void RegisterSharedMemoryMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("mapSharedMemory", Napi::Function::New(env, MapSharedMemoryJs, "mapSharedMemory"));
  exports.Set("unmapSharedMemory", Napi::Function::New(env, UnmapSharedMemoryJs, "unmapSharedMemory"));
}

}  // namespace tensormem
