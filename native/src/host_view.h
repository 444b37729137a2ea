// Zero-copy views of host chunk memory for JS (a data plane GET writes them to its socket as they are).
//
// hostView(handle, offset, bytes) returns a Uint8Array over [offset, offset + bytes) of a host chunk
// and pins the chunk (ChunkTable::Acquire), so that a free() meanwhile only marks it release-pending:
// the memory stays mapped while the view may be read. releaseView(view) detaches the view's
// ArrayBuffer (every view of it reads as empty from then on) and drops the pin, releasing the chunk if
// it was freed meanwhile. A view never released is unpinned when the GC collects its ArrayBuffer. An
// ArrayBuffer that view.buffer.transfer() (Node 22+) moved the memory to keeps the pin until it is
// collected: releaseView() of the view it was moved from (detached by the move) leaves the pin alone.
//
// Device chunks are refused (UNSUPPORTED): on cuda their pointer is not host memory, and on host the
// emulated device keeps the same rule so that callers do not come to rely on it.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>

#include "backend_core.h"

namespace tensormem {

Napi::Value NewHostView(Napi::Env env, const std::shared_ptr<BackendCore>& core, Handle handle, uint64_t offset, uint64_t bytes);

// Throws TypeError unless `view` came from NewHostView and was not released yet.
void ReleaseHostView(Napi::Env env, const Napi::Value& view);

// When `array` is (a view into) a live host view: pins the viewed chunk once more, for an async
// operation that copies to or from the array's bytes, and returns what drops that pin (to call on the
// main thread when the operation settles); releaseView() meanwhile then leaves the chunk mapped.
// Empty otherwise.
std::function<void()> PinHostView(Napi::Env env, const Napi::Uint8Array& array);

}  // namespace tensormem
