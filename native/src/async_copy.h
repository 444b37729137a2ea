// The *Async operations: a ChunkOp run on the libuv thread pool (Napi::AsyncWorker), settling a Promise.
//
// Contract with the caller (main thread): `pins` holds a pin in core's table (ChunkTable::Acquire) of
// every chunk the operation touches, taken after its range was resolved, and what drops the other pins
// (the chunk of a host view, or the shared-memory mapping, that the Uint8Array's bytes belong to); the
// worker drops them all on the main thread when the operation settles, which is when a chunk freed
// meanwhile is really released. `keep_alive` holds the JS values whose memory the operation touches (the
// Uint8Array) and the backend object, so that neither is collected while the copy runs. Off the main
// thread only the baton's raw pointers are used.
// Not covered: a JS buffer whose ArrayBuffer is detached meanwhile (transferred, resized) has its memory
// freed by V8 under the copy; N-API has no way to hold the backing store, so callers must not do that.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

#include "backend_core.h"
#include "chunk_op.h"

namespace tensormem {

// The pins an async operation holds, dropped (on the main thread) when this is destroyed or Drop()
// runs, whichever comes first. Taken before the operation is queued, so that an N-API call failing on
// the way (worker.terminate() stops the environment from another thread, at any point) drops them
// instead of keeping the chunks and mappings for ever.
class OperationPins {
 public:
  explicit OperationPins(std::shared_ptr<BackendCore> core) : core_(std::move(core)) {}
  ~OperationPins() { Drop(); }
  OperationPins(OperationPins&&) noexcept = default;
  OperationPins(const OperationPins&) = delete;
  OperationPins& operator=(const OperationPins&) = delete;
  OperationPins& operator=(OperationPins&&) = delete;

  // Acquire in core's table (the handle was looked up on this thread just now).
  void AcquireChunk(Handle handle);
  // Adds what drops a pin taken elsewhere; an empty function is ignored.
  void Add(std::function<void()> unpin);
  void Drop() noexcept;

 private:
  std::shared_ptr<BackendCore> core_;
  std::vector<Handle> chunks_;
  std::vector<std::function<void()>> others_;
};

// Takes the pins over: they are dropped when the operation settles, or at once when this throws.
Napi::Promise QueueChunkOp(Napi::Env env, std::shared_ptr<BackendCore> core, const ChunkOp& op, OperationPins&& pins,
                           const std::vector<Napi::Object>& keep_alive);

}  // namespace tensormem
