// The *Async operations: a ChunkOp run on the libuv thread pool (Napi::AsyncWorker), settling a Promise.
//
// Contract with the caller (main thread): every chunk in `pinned` has been pinned in core's table
// (ChunkTable::Acquire) after its range was resolved; the worker unpins them on the main thread when
// the operation settles, which is when a chunk freed meanwhile is really released. `keep_alive` holds
// the JS values whose memory the operation touches (the Uint8Array) and the backend object, so that
// neither is collected while the copy runs; `on_settle` drops the other pins it holds (the chunk of a
// host view, or the shared-memory mapping, that the Uint8Array's bytes belong to), on the main thread
// when it settles. Off the main thread only the baton's raw pointers are used.
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

Napi::Promise QueueChunkOp(Napi::Env env, std::shared_ptr<BackendCore> core, const ChunkOp& op, std::vector<Handle> pinned,
                           const std::vector<Napi::Object>& keep_alive, std::vector<std::function<void()>> on_settle = {});

}  // namespace tensormem
