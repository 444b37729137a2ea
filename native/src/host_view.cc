#include "host_view.h"

#include "native_error.h"

namespace tensormem {
namespace {

// Owned by the napi_wrap on the view's ArrayBuffer: deleted by ReleaseHostView (after napi_remove_wrap)
// or by the wrap's finalizer when the ArrayBuffer is collected unreleased.
struct HostViewPin {
  std::shared_ptr<BackendCore> core;
  Handle handle;
};

// Marks the ArrayBuffers of views, so that only they are taken for one (another addon may wrap an
// ArrayBuffer with data of its own).
constexpr napi_type_tag kHostViewTag = {0x746d2d686f737476ULL, 0x6965772d76310000ULL};

bool IsHostViewBuffer(Napi::Env env, const Napi::ArrayBuffer& buffer) {
  bool tagged = false;
  return napi_check_object_type_tag(env, buffer, &kHostViewTag, &tagged) == napi_ok && tagged;
}

void FinalizeUnreleased(napi_env /* env */, void* data, void* /* hint */) {
  auto* pin = static_cast<HostViewPin*>(data);
  pin->core->Unpin(pin->handle);
  delete pin;
}

}  // namespace

Napi::Value NewHostView(Napi::Env env, const std::shared_ptr<BackendCore>& core, Handle handle, uint64_t offset, uint64_t bytes) {
  const Chunk chunk = core->table().Lookup(handle);
  if (chunk.kind != ChunkKind::kHost) {
    throw NativeError(ErrorCode::kUnsupported, "chunk " + std::to_string(handle) + " is device memory: only host chunks can be viewed");
  }
  const Location location = BackendCore::Resolve(chunk, offset, bytes);
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, location.ptr, bytes);
  Napi::Uint8Array view = Napi::Uint8Array::New(env, bytes, buffer, 0);
  auto pin = std::make_unique<HostViewPin>(HostViewPin{core, handle});
  // Pin before the wrap can finalize; the handle was looked up on this thread just now.
  core->table().Acquire(handle);
  napi_status status = napi_type_tag_object(env, buffer, &kHostViewTag);
  if (status == napi_ok) status = napi_wrap(env, buffer, pin.get(), FinalizeUnreleased, nullptr, nullptr);
  if (status != napi_ok) {
    core->Unpin(handle);
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  }
  pin.release();
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
  std::unique_ptr<HostViewPin> pin(static_cast<HostViewPin*>(data));
  buffer.Detach();
  pin->core->Unpin(pin->handle);
}

std::function<void()> PinHostView(Napi::Env env, const Napi::Uint8Array& array) {
  Napi::ArrayBuffer buffer = array.ArrayBuffer();
  void* data = nullptr;
  if (!IsHostViewBuffer(env, buffer) || napi_unwrap(env, buffer, &data) != napi_ok || data == nullptr) {
    env.GetAndClearPendingException();
    return {};
  }
  const auto* pin = static_cast<const HostViewPin*>(data);
  if (!pin->core->table().AddPin(pin->handle)) return {};
  return [core = pin->core, handle = pin->handle] { core->Unpin(handle); };
}

}  // namespace tensormem
