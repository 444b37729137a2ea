// The JS object returned by createBackend(): implements NativeBackend (src/native/backend.ts) on top of
// a BackendCore. Reads arguments (js_interop.h), resolves handles and ranges on the main thread, then
// runs the ChunkOp here (sync methods) or on the thread pool (*Async methods, which report every error,
// argument errors included, as a rejected promise).
//
// The object's finalizer closes the core (releasing any chunk still live, except those that host views
// still pin: they go with their last view) as a safety net; explicit free() is the API.
#pragma once

#include <napi.h>

#include <memory>

#include "backend_core.h"

namespace tensormem {

class BackendObject final : public Napi::ObjectWrap<BackendObject> {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // A new JS object owning `core`; `constructor` is the function DefineClass returned.
  static Napi::Object NewInstance(const Napi::Function& constructor, std::shared_ptr<BackendCore> core);

  // Not callable from JS (it expects an External only NewInstance can make).
  explicit BackendObject(const Napi::CallbackInfo& info);
  ~BackendObject() override;

 private:
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value DeviceCount(const Napi::CallbackInfo& info);
  Napi::Value DeviceInfo(const Napi::CallbackInfo& info);
  Napi::Value AllocDevice(const Napi::CallbackInfo& info);
  Napi::Value AllocHost(const Napi::CallbackInfo& info);
  Napi::Value MapFile(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value ChunkInfo(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Copy(const Napi::CallbackInfo& info);
  Napi::Value Fill(const Napi::CallbackInfo& info);
  Napi::Value WriteAsync(const Napi::CallbackInfo& info);
  Napi::Value ReadAsync(const Napi::CallbackInfo& info);
  Napi::Value CopyAsync(const Napi::CallbackInfo& info);
  Napi::Value FillAsync(const Napi::CallbackInfo& info);
  Napi::Value ExportIpcHandle(const Napi::CallbackInfo& info);
  Napi::Value OpenIpcHandle(const Napi::CallbackInfo& info);
  Napi::Value LiveChunks(const Napi::CallbackInfo& info);
  Napi::Value SettleReleases(const Napi::CallbackInfo& info);
  Napi::Value HostView(const Napi::CallbackInfo& info);
  Napi::Value ReleaseView(const Napi::CallbackInfo& info);

  // A resolved operation plus the chunks it touches and the JS buffer it reads or writes, if any.
  struct PreparedOp;
  PreparedOp PrepareWrite(const Napi::CallbackInfo& info);
  PreparedOp PrepareRead(const Napi::CallbackInfo& info);
  PreparedOp PrepareCopy(const Napi::CallbackInfo& info);
  PreparedOp PrepareFill(const Napi::CallbackInfo& info);
  Napi::Value RunSync(const Napi::CallbackInfo& info, PreparedOp (BackendObject::*prepare)(const Napi::CallbackInfo&));
  Napi::Value RunAsync(const Napi::CallbackInfo& info, PreparedOp (BackendObject::*prepare)(const Napi::CallbackInfo&));

  std::shared_ptr<BackendCore> core_;
};

}  // namespace tensormem
