// Page-aligned host mappings that do not go through malloc: private anonymous memory, POSIX
// shared-memory objects that another process on the host can map by name, and regular files mapped
// whole (their contents live in the file).
#pragma once

#include <cstdint>
#include <string>

namespace tensormem {

// mmap(MAP_PRIVATE | MAP_ANONYMOUS). Throws OUT_OF_MEMORY (ENOMEM) or SYSTEM_ERROR.
void* MapAnonymous(uint64_t bytes);
void UnmapAnonymous(void* ptr, uint64_t bytes) noexcept;

// shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600), sized with posix_fallocate (so that a full
// /dev/shm is an OUT_OF_MEMORY error now, not a SIGBUS on first touch), mmap(MAP_SHARED). The name must
// start with "/" and contain no other "/" and no NUL. On failure nothing is left behind (the object is unlinked).
void* MapShared(const std::string& name, uint64_t bytes);
// munmap + shm_unlink. Names still live at exit() are unlinked then (process.exit() runs no cleanup hooks).
void UnmapShared(const std::string& name, void* ptr, uint64_t bytes) noexcept;
// The two halves, for a release that cannot unmap yet (the cuda backend unregisters the pages on its
// release thread first): the name goes now, so no process opens it any more, while the mapping stays
// valid until UnmapSharedPages.
void UnlinkShared(const std::string& name) noexcept;
void UnmapSharedPages(void* ptr, uint64_t bytes) noexcept;

struct FileMapping {
  void* ptr = nullptr;
  uint64_t bytes = 0;  // the file's length, all of it mapped
};

// The regular file at `path` mapped whole with mmap(MAP_SHARED), read-write.
//  - create_bytes > 0: open(O_CREAT | O_RDWR, 0600), truncate, and size it to create_bytes zero bytes
//    with ftruncate + posix_fallocate (so that a full disk is an OUT_OF_MEMORY error now, not a SIGBUS on
//    first touch). An existing file is truncated and keeps its mode. On failure a file this call created
//    is removed and an existing one is left empty. SYSTEM_ERROR, the file untouched, when a live mapping
//    of this process maps it (truncating it would make that mapping's pages SIGBUS).
//  - create_bytes == 0: the existing file as it is; SYSTEM_ERROR when it is missing, not a regular file,
//    or empty.
// Errors name the path and the errno. delete_on_free: UnmapFile unlinks the file, and so does exit()
// for mappings still live (process.exit() runs no cleanup hooks); either only while `path` still names
// the file that was mapped (same device and inode), so a file created at that path since is left alone.
// The mapping does not keep a descriptor open. Someone else truncating the file makes touching the
// lost pages a SIGBUS: the file is the caller's to leave alone while mapped.
FileMapping MapFile(const std::string& path, uint64_t create_bytes, bool delete_on_free);
// munmap, then the unlink MapFile's delete_on_free asked for.
void UnmapFile(void* ptr, uint64_t bytes) noexcept;

}  // namespace tensormem
