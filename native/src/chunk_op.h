// One byte-moving operation on resolved, bounds-checked locations: a copy or a fill. The same
// description runs synchronously on the main thread (write/read/copy/fill) or on a worker thread
// (the *Async variants, async_copy.h).
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "chunk_table.h"

namespace tensormem {

struct ChunkOp {
  enum class Kind { kCopy, kFill };
  Kind kind = Kind::kCopy;
  Location dst;
  Location src;  // kCopy only
  uint64_t bytes = 0;
  uint8_t value = 0;  // kFill only
};

// Runs the operation; zero bytes is a no-op. Throws what the backend throws.
void RunChunkOp(Backend& backend, const ChunkOp& op);

// A JS buffer as a copy endpoint.
Location PageableLocation(void* ptr);

}  // namespace tensormem
