#include "host_view.h"

#include "native_error.h"

namespace tensormem {
namespace {

// The view's pin of its chunk, shared by the napi_wrap on the view's ArrayBuffer object (how
// ReleaseHostView and PinHostView find it) and by the ArrayBuffer's memory: Node calls the finalizer of
// an external ArrayBuffer when its backing store is freed, not when that object is collected, and
// ArrayBuffer.prototype.transfer() (Node 22+) moves the backing store to a new ArrayBuffer without a
// copy. Until the last ArrayBuffer over the memory is released or collected, the chunk stays pinned.
struct HostViewPin {
  std::shared_ptr<BackendCore> core;
  Handle handle;
  bool unpinned = false;  // JS thread only

  void UnpinOnce() {
    if (unpinned) return;
    unpinned = true;
    core->Unpin(handle);
  }
};
using SharedPin = std::shared_ptr<HostViewPin>;

// Marks the ArrayBuffers of views, so that only they are taken for one (another addon may wrap an
// ArrayBuffer with data of its own).
constexpr napi_type_tag kHostViewTag = {0x746d2d686f737476ULL, 0x6965772d76310000ULL};

bool IsHostViewBuffer(Napi::Env env, const Napi::ArrayBuffer& buffer) {
  bool tagged = false;
  return napi_check_object_type_tag(env, buffer, &kHostViewTag, &tagged) == napi_ok && tagged;
}

// The wrap's share: the ArrayBuffer object was collected (its memory may live on, moved).
void FinalizeWrap(napi_env /* env */, void* data, void* /* hint */) {
  delete static_cast<SharedPin*>(data);
}

// The memory's share: no ArrayBuffer holds it any more, released or not.
void FinalizeMemory(Napi::Env /* env */, void* /* data */, SharedPin* pin) {
  (*pin)->UnpinOnce();
  delete pin;
}

}  // namespace

Napi::Value NewHostView(Napi::Env env, const std::shared_ptr<BackendCore>& core, Handle handle, uint64_t offset, uint64_t bytes) {
  const Chunk chunk = core->table().Lookup(handle);
  if (chunk.kind != ChunkKind::kHost) {
    throw NativeError(ErrorCode::kUnsupported, "chunk " + std::to_string(handle) + " is device memory: only host chunks can be viewed");
  }
  const Location location = BackendCore::Resolve(chunk, offset, bytes);
  const SharedPin shared = std::make_shared<HostViewPin>(HostViewPin{core, handle});
  auto memory_share = std::make_unique<SharedPin>(shared);
  auto wrap_share = std::make_unique<SharedPin>(shared);
  // Pin before a finalizer can run; the handle was looked up on this thread just now.
  core->table().Acquire(handle);
  Napi::ArrayBuffer buffer;
  try {
    buffer = Napi::ArrayBuffer::New(env, location.ptr, bytes, FinalizeMemory, memory_share.get());
  } catch (...) {
    shared->UnpinOnce();
    throw;
  }
  memory_share.release();  // the memory's finalizer's now: it unpins, released or not
  Napi::Uint8Array view = Napi::Uint8Array::New(env, bytes, buffer, 0);
  napi_status status = napi_type_tag_object(env, buffer, &kHostViewTag);
  if (status == napi_ok) status = napi_wrap(env, buffer, wrap_share.get(), FinalizeWrap, nullptr, nullptr);
  if (status != napi_ok) {
    shared->UnpinOnce();
    buffer.Detach();
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  }
  wrap_share.release();
  return view;
}

void ReleaseHostView(Napi::Env env, const Napi::Value& value) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(env, "Expected a Uint8Array from hostView() for view");
  }
  Napi::ArrayBuffer buffer = value.As<Napi::Uint8Array>().ArrayBuffer();
  void* data = nullptr;
  if (!IsHostViewBuffer(env, buffer) || napi_remove_wrap(env, buffer, &data) != napi_ok || data == nullptr) {
    // Not a view (no wrap), or released already (the wrap is gone).
    env.GetAndClearPendingException();
    throw Napi::TypeError::New(env, "Expected a view from hostView() that was not released yet");
  }
  std::unique_ptr<SharedPin> pin(static_cast<SharedPin*>(data));
  // Detached already: ArrayBuffer.prototype.transfer() moved the memory to another ArrayBuffer, which
  // reads it still; the pin goes when that one is collected.
  if (buffer.IsDetached()) return;
  buffer.Detach();
  (*pin)->UnpinOnce();
}

std::function<void()> PinHostView(Napi::Env env, const Napi::Uint8Array& array) {
  Napi::ArrayBuffer buffer = array.ArrayBuffer();
  void* data = nullptr;
  if (!IsHostViewBuffer(env, buffer) || napi_unwrap(env, buffer, &data) != napi_ok || data == nullptr) {
    env.GetAndClearPendingException();
    return {};
  }
  const HostViewPin* pin = static_cast<const SharedPin*>(data)->get();
  if (!pin->core->table().AddPin(pin->handle)) return {};
  return [core = pin->core, handle = pin->handle] { core->Unpin(handle); };
}

}  // namespace tensormem
