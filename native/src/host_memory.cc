#include "host_memory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <set>
#include <unordered_map>

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

// The files of live mapFile mappings, by mapping address: the last free (or exit(), for mappings still
// live then; same reasoning and lifetime as LiveShmNames) unlinks those mapped with deleteOnFree, and
// MapFile asks whether a file it would truncate is mapped (IsMapped). A file is unlinked only while its
// path still names the inode that was mapped: a file created at that path since (by anyone) is left alone.
class MappedFiles {
 public:
  static MappedFiles& Get() {
    static MappedFiles* files = [] {
      auto* created = new MappedFiles();
      std::atexit([] { Get().UnlinkAll(); });
      return created;
    }();
    return *files;
  }

  void Add(void* ptr, const std::string& path, const struct stat& status, bool delete_on_free) {
    std::lock_guard<std::mutex> lock(mutex_);
    files_[ptr] = File{path, status.st_dev, status.st_ino, delete_on_free};
  }

  // Forgets the mapping at ptr and unlinks its file if it was mapped with deleteOnFree.
  void Remove(void* ptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = files_.find(ptr);
    if (it == files_.end()) return;
    if (it->second.delete_on_free) UnlinkIfSameFile(it->second);
    files_.erase(it);
  }

  // Whether a live mapping of this process maps the file (device and inode of `status`).
  bool IsMapped(const struct stat& status) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [ptr, file] : files_) {
      if (file.device == status.st_dev && file.inode == status.st_ino) return true;
    }
    return false;
  }

 private:
  struct File {
    std::string path;
    dev_t device;
    ino_t inode;
    bool delete_on_free;
  };

  static void UnlinkIfSameFile(const File& file) {
    struct stat status;
    if (stat(file.path.c_str(), &status) == 0 && status.st_dev == file.device && status.st_ino == file.inode) unlink(file.path.c_str());
  }

  void UnlinkAll() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [ptr, file] : files_) {
      if (file.delete_on_free) UnlinkIfSameFile(file);
    }
    files_.clear();
  }

  std::mutex mutex_;
  std::unordered_map<void*, File> files_;
};

// An open file descriptor that MapFile has not finished with: on failure it is closed and the file is
// put back (removed when this call created it, emptied when it truncated an existing one).
class PendingFile {
 public:
  PendingFile(const std::string& path, int fd, bool created, bool truncated) : path_(path), fd_(fd), created_(created), truncated_(truncated) {}
  ~PendingFile() {
    if (fd_ < 0) return;
    if (created_) {
      unlink(path_.c_str());
    } else if (truncated_ && ftruncate(fd_, 0) != 0) {
      // Nothing more to do: the call fails with its own error either way.
    }
    close(fd_);
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;

  int fd() const { return fd_; }
  bool created() const { return created_; }
  // From now on a failure empties the file (it is no longer as it was).
  void MarkTruncated() { truncated_ = true; }
  // Success: closes the descriptor and keeps the file.
  void Keep() {
    close(fd_);
    fd_ = -1;
  }

 private:
  const std::string& path_;
  int fd_;
  bool created_;
  bool truncated_;
};

// Opens path for MapFile: created when create is true and it does not exist, the existing file
// otherwise (not truncated yet: MapFile first checks that no live mapping of it would lose its pages).
PendingFile OpenForMapping(const std::string& path, bool create, const std::string& what) {
  if (!create) {
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) throw SystemError("open of " + what, errno);
    return PendingFile(path, fd, false, false);
  }
  // O_EXCL first, to know whether this call created the file (and so may remove it on failure).
  int fd = open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return PendingFile(path, fd, true, false);
  if (errno != EEXIST) throw SystemError("open (O_CREAT) of " + what, errno);
  fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) throw SystemError("open (O_CREAT) of " + what, errno);
  return PendingFile(path, fd, false, false);
}

// Another process's mappings of a file are not in MappedFiles: a daemon sharing the folder (two
// daemons on one --mmap-dir, the default, share tenant-default/). Each mapping holds a shared flock(2)
// on its file, which lasts while the mapping does (the lock belongs to the open file description, which
// the mapping keeps after the descriptor is closed); re-creating an existing file takes it exclusively,
// so a file another process maps is refused instead of truncated under that mapping (its pages zeroed,
// and a SIGBUS for a touch between the two truncates). A file system without flock (ENOLCK, EINVAL)
// goes unlocked, as before.
void LockForMapping(const PendingFile& file, bool exclusive, const std::string& what, uint64_t create_bytes) {
  if (flock(file.fd(), (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 || errno != EWOULDBLOCK) return;
  if (exclusive) {
    throw NativeError(ErrorCode::kSystemError, "cannot create " + what + " with " + DescribeBytes(create_bytes) +
                                                   ": another process maps it (a daemon sharing this folder; createBytes would truncate it under "
                                                   "that mapping); map it as it is with createBytes 0, or once that process has unmapped it");
  }
  throw NativeError(ErrorCode::kSystemError, "cannot map " + what + ": another process holds an exclusive flock on it (as a daemon re-creating it does); try again once it is released");
}

}  // namespace

void* MapAnonymous(uint64_t bytes) {
  void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ptr == MAP_FAILED) throw SystemError("mmap of " + DescribeBytes(bytes), errno);
  return ptr;
}

void UnmapAnonymous(void* ptr, uint64_t bytes) noexcept { munmap(ptr, bytes); }

void* MapShared(const std::string& name, uint64_t bytes) {
  // A NUL would end the name shm_open sees ("/a\0b" made "/a") while the chunk kept the whole string.
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.find('\0') != std::string::npos) {
    throw NativeError(ErrorCode::kSystemError, "invalid shared-memory name \"" + name + "\": expected \"/\" followed by a name without \"/\" or NUL");
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
  UnmapSharedPages(ptr, bytes);
  UnlinkShared(name);
}

void UnlinkShared(const std::string& name) noexcept {
  // Unlinked once: if exit already did it, the name may since belong to someone else.
  if (LiveShmNames::Get().Remove(name)) shm_unlink(name.c_str());
}

void UnmapSharedPages(void* ptr, uint64_t bytes) noexcept { munmap(ptr, bytes); }

FileMapping MapFile(const std::string& path, uint64_t create_bytes, bool delete_on_free) {
  const std::string what = "file \"" + path + "\"";
  PendingFile file = OpenForMapping(path, create_bytes > 0, what);
  struct stat status;
  if (fstat(file.fd(), &status) != 0) throw SystemError("fstat of " + what, errno);
  if (!S_ISREG(status.st_mode)) throw NativeError(ErrorCode::kSystemError, "cannot map " + what + ": not a regular file");
  uint64_t bytes = create_bytes;
  const bool recreate = create_bytes > 0 && !file.created();
  if (create_bytes > 0) {
    // Truncating (or, on failure, emptying) a file that a live chunk maps would turn that chunk's pages
    // past the new end into SIGBUS on the next touch: refused, the file left as it is.
    if (MappedFiles::Get().IsMapped(status)) {
      throw NativeError(ErrorCode::kSystemError, "cannot create " + what + " with " + DescribeBytes(create_bytes) +
                                                     ": the file is mapped by a live chunk of this process (createBytes would truncate it under that "
                                                     "mapping); map it as it is with createBytes 0, or free that chunk first");
    }
  }
  LockForMapping(file, recreate, what, create_bytes);
  if (create_bytes > 0) {
    if (status.st_size != 0) {
      if (ftruncate(file.fd(), 0) != 0) throw SystemError("ftruncate of " + what + " to 0 bytes", errno);
      file.MarkTruncated();
    }
    if (ftruncate(file.fd(), static_cast<off_t>(create_bytes)) != 0) {
      throw SystemError("ftruncate of " + what + " to " + DescribeBytes(create_bytes), errno);
    }
    // posix_fallocate returns the error number instead of setting errno.
    const int fallocate_error = posix_fallocate(file.fd(), 0, static_cast<off_t>(create_bytes));
    if (fallocate_error == ENOSPC || fallocate_error == EDQUOT) {
      throw NativeError(ErrorCode::kOutOfMemory, "cannot reserve " + DescribeBytes(create_bytes) + " for " + what + ": the disk is full (" +
                                                     SystemError("posix_fallocate", fallocate_error).what() + ")");
    }
    if (fallocate_error != 0) throw SystemError("posix_fallocate of " + DescribeBytes(create_bytes) + " for " + what, fallocate_error);
  } else {
    if (status.st_size <= 0) {
      throw NativeError(ErrorCode::kSystemError, "cannot map " + what + ": the file is empty (pass createBytes to create it with a size)");
    }
    bytes = static_cast<uint64_t>(status.st_size);
  }
  // Shared from here on, so that other processes may map the file as it is too.
  if (recreate) flock(file.fd(), LOCK_SH | LOCK_NB);
  void* ptr = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd(), 0);
  if (ptr == MAP_FAILED) throw SystemError("mmap of " + DescribeBytes(bytes) + " of " + what, errno);
  try {
    MappedFiles::Get().Add(ptr, path, status, delete_on_free);
  } catch (...) {
    munmap(ptr, bytes);
    throw;
  }
  file.Keep();  // the mapping keeps the file open
  return FileMapping{ptr, bytes};
}

void UnmapFile(void* ptr, uint64_t bytes) noexcept {
  // Unlinked before munmap, so that the address cannot be reused by another mapping while registered.
  MappedFiles::Get().Remove(ptr);
  munmap(ptr, bytes);
}

}  // namespace tensormem
