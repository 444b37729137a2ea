// One backend instance as the JS object sees it, minus JS: a platform Backend plus its ChunkTable.
// It turns (handle, offset, length) into bounds-checked Locations and owns the chunk lifecycle
// (allocate → insert, free → release now or when the last async operation ends, close → release all).
//
// Allocation, free, Resolve and Close run on the main thread; only Backend::Copy/Fill on resolved
// Locations run elsewhere (bracketed by table().BeginExecute/EndExecute).
#pragma once

#include <memory>
#include <string>

#include "backend.h"
#include "chunk_table.h"

namespace tensormem {

class BackendCore {
 public:
  explicit BackendCore(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}
  ~BackendCore() { Close(); }
  BackendCore(const BackendCore&) = delete;
  BackendCore& operator=(const BackendCore&) = delete;

  Backend& backend() { return *backend_; }
  ChunkTable& table() { return table_; }

  // OUT_OF_BOUNDS unless device < DeviceCount().
  int CheckDevice(uint64_t device) const;

  Handle AllocDevice(uint64_t device, uint64_t bytes);
  Handle AllocHost(uint64_t bytes, const std::string& shm_name);
  // A host chunk backed by the file at path (Backend::MapFile); its bytes are the file's length.
  Handle MapFile(const std::string& path, uint64_t create_bytes, bool delete_on_free);
  // A device chunk over another process's allocation, mapped from its CUDA IPC handle. `bytes` is the
  // caller's word for the exported size (CUDA does not report it): the range checks use it.
  Handle OpenIpcHandle(uint64_t device, const IpcHandle& handle, uint64_t bytes);
  // Releases now, or marks the chunk release-pending while async operations use it.
  void Free(Handle handle);

  // The location of [offset, offset + length) in the chunk; OUT_OF_BOUNDS (naming offset, length and the
  // chunk size) unless it lies inside. Overflow-safe for any 64-bit offset and length.
  static Location Resolve(const Chunk& chunk, uint64_t offset, uint64_t length);
  // UNSUPPORTED when both ranges are in the same chunk and overlap (cudaMemcpy does not define it).
  static void CheckNoOverlap(const Chunk& dst, uint64_t dst_offset, const Chunk& src, uint64_t src_offset, uint64_t length);
  // UNSUPPORTED when a JS buffer of `length` bytes at `buffer` overlaps the chunk range at `chunk_range`
  // (a host view of those very bytes): memcpy does not define it either.
  static void CheckBufferNoOverlap(const Chunk& chunk, const Location& chunk_range, const void* buffer, uint64_t length);

  // Ends an async operation's pin; releases the chunk when it was freed meanwhile.
  void Unpin(Handle handle);

  // Releases every chunk (waiting for running copies first) and returns once their memory is back.
  // Safety net for env teardown; idempotent.
  void Close();
  // The JS object's finalizer: Close, except that a chunk still pinned (by a host view, which holds
  // this core but not the JS object) is released by its last Unpin instead of under the view.
  void CloseUnpinned();

 private:
  Handle Insert(Chunk chunk);

  std::unique_ptr<Backend> backend_;
  ChunkTable table_;
};

}  // namespace tensormem
