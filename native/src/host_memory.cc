#include "host_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <set>

#include "native_error.h"

namespace tensormem {
namespace {

// The shared-memory objects this process created and has not unlinked yet. They outlive the process
// in /dev/shm, and process.exit() skips the environment cleanup hooks, so an atexit() handler unlinks
// whatever is left (mappings stay valid; only the names go). Leaked on purpose: it must outlive static
// destructors, which run interleaved with atexit handlers.
class LiveShmNames {
 public:
  static LiveShmNames& Get() {
    static LiveShmNames* names = [] {
      auto* created = new LiveShmNames();
      std::atexit([] { Get().UnlinkAll(); });
      return created;
    }();
    return *names;
  }

  void Add(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    names_.insert(name);
  }

  // True when the name was live (and is now forgotten).
  bool Remove(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    return names_.erase(name) > 0;
  }

 private:
  void UnlinkAll() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& name : names_) shm_unlink(name.c_str());
    names_.clear();
  }

  std::mutex mutex_;
  std::set<std::string> names_;
};

}  // namespace

void* MapAnonymous(uint64_t bytes) {
  void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ptr == MAP_FAILED) throw SystemError("mmap of " + DescribeBytes(bytes), errno);
  return ptr;
}

void UnmapAnonymous(void* ptr, uint64_t bytes) noexcept { munmap(ptr, bytes); }

void* MapShared(const std::string& name, uint64_t bytes) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos) {
    throw NativeError(ErrorCode::kSystemError, "invalid shared-memory name \"" + name + "\": expected \"/\" followed by a name without \"/\"");
  }
  const std::string what = "shared-memory object \"" + name + "\"";
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) throw SystemError("shm_open of " + what, errno);
  // posix_fallocate returns the error number instead of setting errno.
  const int fallocate_error = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (fallocate_error != 0) {
    close(fd);
    shm_unlink(name.c_str());
    if (fallocate_error == ENOSPC || fallocate_error == ENOMEM) {
      throw NativeError(ErrorCode::kOutOfMemory, "cannot reserve " + DescribeBytes(bytes) + " for " + what + ": /dev/shm is full");
    }
    throw SystemError("posix_fallocate of " + DescribeBytes(bytes) + " for " + what, fallocate_error);
  }
  void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int mmap_errno = errno;
  close(fd);  // the mapping keeps the object open
  if (ptr == MAP_FAILED) {
    shm_unlink(name.c_str());
    throw SystemError("mmap of " + what, mmap_errno);
  }
  LiveShmNames::Get().Add(name);
  return ptr;
}

void UnmapShared(const std::string& name, void* ptr, uint64_t bytes) noexcept {
  munmap(ptr, bytes);
  // Unlinked once: if exit already did it, the name may since belong to someone else.
  if (LiveShmNames::Get().Remove(name)) shm_unlink(name.c_str());
}

}  // namespace tensormem
