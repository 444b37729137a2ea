// Page-aligned host mappings that do not go through malloc: private anonymous memory, and POSIX
// shared-memory objects that another process on the host can map by name.
#pragma once

#include <cstdint>
#include <string>

namespace tensormem {

// mmap(MAP_PRIVATE | MAP_ANONYMOUS). Throws OUT_OF_MEMORY (ENOMEM) or SYSTEM_ERROR.
void* MapAnonymous(uint64_t bytes);
void UnmapAnonymous(void* ptr, uint64_t bytes) noexcept;

// shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600), sized with posix_fallocate (so that a full
// /dev/shm is an OUT_OF_MEMORY error now, not a SIGBUS on first touch), mmap(MAP_SHARED). The name must
// start with "/" and contain no other "/". On failure nothing is left behind (the object is unlinked).
void* MapShared(const std::string& name, uint64_t bytes);
// munmap + shm_unlink. Names still live at exit() are unlinked then (process.exit() runs no cleanup hooks).
void UnmapShared(const std::string& name, void* ptr, uint64_t bytes) noexcept;

}  // namespace tensormem
