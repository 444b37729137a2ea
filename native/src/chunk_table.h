// The table of live chunks of one backend: integer handles to raw memory, so that a stale or forged
// handle is an error (INVALID_HANDLE), never a wild pointer.
//
// Contracts:
//  - Handles are positive int32 values, unique in the process (one counter for every table); a freed
//    handle number is never handed out again.
//  - An async operation pins each chunk it touches (Acquire) until it settles (Unpin). Freeing a pinned
//    chunk makes its handle invalid at once, but the memory is kept ("release pending") until the last
//    pin goes; Unpin then returns the chunk so that the caller releases it.
//  - Off-main-thread work brackets itself with BeginExecute/EndExecute; Close() refuses new executions,
//    waits for running ones and returns every chunk, so that the owner can release them (env teardown);
//    CloseUnpinned() (finalizer) keeps pinned chunks until their last Unpin.
//  - Thread-safe (one mutex); the table never allocates or releases the memory itself.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tensormem {

using Handle = uint32_t;

enum class ChunkKind { kDevice, kHost };

struct Chunk {
  Handle handle = 0;
  ChunkKind kind = ChunkKind::kHost;
  int device = -1;  // the device of a device chunk; -1 for host chunks
  void* ptr = nullptr;
  uint64_t bytes = 0;
  std::string shm_name;   // non-empty for POSIX shared-memory host chunks
  std::string file_path;  // non-empty for file-backed host chunks (mapFile)
  bool ipc_opened = false;  // a device chunk mapped from another process's CUDA IPC handle (openIpcHandle)
};

// Chunk counts and bytes by kind, including chunks whose release is pending on an async operation
// (their memory is still held).
struct LiveTotals {
  uint64_t device_chunks = 0;
  uint64_t host_chunks = 0;
  uint64_t device_bytes = 0;
  uint64_t host_bytes = 0;
};

class ChunkTable {
 public:
  // Assigns the next handle and records the chunk. Throws SYSTEM_ERROR when the table is closed or
  // the handle space is exhausted (the caller still owns the memory then).
  Handle Insert(Chunk chunk);

  // A copy of a live chunk. Throws INVALID_HANDLE for unknown, freed or release-pending handles.
  Chunk Lookup(Handle handle) const;

  // Lookup + pin for an async operation.
  Chunk Acquire(Handle handle);

  // One more pin on a chunk that something pins already (a host view), release-pending or not; false
  // when the table no longer has it (closed).
  bool AddPin(Handle handle);

  // Drops one pin. Returns the chunk when it was freed meanwhile and this was its last pin: the caller
  // must release its memory. Unknown handles (table closed meanwhile) are ignored.
  std::optional<Chunk> Unpin(Handle handle);

  // Frees a handle. Returns the chunk to release now, or nullopt when pinned (release pending).
  // Throws INVALID_HANDLE for unknown or already freed handles.
  std::optional<Chunk> Remove(Handle handle);

  LiveTotals Totals() const;

  // Off-main-thread work: false when the table is closed (the work must not touch chunk memory).
  bool BeginExecute();
  void EndExecute();

  // Refuses further executions and inserts, waits for running executions, and hands back every chunk
  // (pinned or not). Idempotent: a second call returns nothing.
  std::vector<Chunk> Close();

  // Close, except that pinned chunks are not handed back but made release-pending: their last Unpin
  // returns them (a host view may outlive the table's owner and still be read). Close() later hands
  // back what is left.
  std::vector<Chunk> CloseUnpinned();

 private:
  struct Entry {
    Chunk chunk;
    uint32_t pins = 0;
    bool release_pending = false;
  };

  // The entry of a live (not freed) handle, or INVALID_HANDLE. Requires mutex_.
  template <typename Entries>
  static auto& LiveEntry(Entries& entries, Handle handle);

  mutable std::mutex mutex_;
  std::condition_variable executions_done_;
  std::unordered_map<Handle, Entry> entries_;
  uint32_t executing_ = 0;
  bool closed_ = false;
};

}  // namespace tensormem
