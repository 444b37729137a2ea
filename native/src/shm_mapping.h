// The client side of ExportArray on the same host: a POSIX shared-memory object, named by the daemon,
// mapped whole into this process and handed to JS as an external ArrayBuffer (no copy).
//
//   mapSharedMemory(name, writable) → ArrayBuffer over the whole object (PROT_READ, or
//     PROT_READ | PROT_WRITE when writable), MAP_SHARED. Throws SYSTEM_ERROR naming the object and the
//     errno (ENOENT once the daemon unlinked it, EACCES for another user's object).
//   unmapSharedMemory(arrayBuffer) → true when it unmapped a live mapping: munmap now (or, while an
//     async copy of the backend reads or writes its bytes, when that copy ends), and the ArrayBuffer is
//     detached, so every view of it reads as length 0 instead of touching unmapped memory. false for an
//     ArrayBuffer that is not a live mapping (already unmapped, or not ours).
//
// A mapping forgotten by JS is unmapped by the ArrayBuffer's finalizer; explicit unmap is the API.
// The mapping stays valid after the daemon unlinks the name (Linux keeps the pages while mapped).
#pragma once

#include <napi.h>

#include <cstddef>
#include <functional>

namespace tensormem {

void RegisterSharedMemoryMapping(Napi::Env env, Napi::Object exports);

// When [ptr, ptr + bytes) lies in a live mapping: pins it, for an async operation that copies to or
// from those bytes, and returns what drops the pin (an unmap meanwhile waits for it). Empty otherwise.
std::function<void()> PinSharedMemoryMapping(const void* ptr, size_t bytes);

}  // namespace tensormem
