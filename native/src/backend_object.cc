#include "backend_object.h"

#include <cstring>
#include <functional>
#include <vector>

#include "async_copy.h"
#include "chunk_op.h"
#include "host_view.h"
#include "js_interop.h"
#include "shm_mapping.h"

namespace tensormem {

struct BackendObject::PreparedOp {
  ChunkOp op;
  std::vector<Handle> chunks;
  Napi::Object buffer;  // empty for chunk-to-chunk operations
};

Napi::Function BackendObject::DefineClass(Napi::Env env) {
  return ObjectWrap<BackendObject>::DefineClass(
      env, "NativeBackend",
      {
          InstanceAccessor<&BackendObject::Name>("name", napi_enumerable),
          InstanceMethod<&BackendObject::DeviceCount>("deviceCount"),
          InstanceMethod<&BackendObject::DeviceInfo>("deviceInfo"),
          InstanceMethod<&BackendObject::AllocDevice>("allocDevice"),
          InstanceMethod<&BackendObject::AllocHost>("allocHost"),
          InstanceMethod<&BackendObject::MapFile>("mapFile"),
          InstanceMethod<&BackendObject::Free>("free"),
          InstanceMethod<&BackendObject::ChunkInfo>("chunkInfo"),
          InstanceMethod<&BackendObject::Write>("write"),
          InstanceMethod<&BackendObject::Read>("read"),
          InstanceMethod<&BackendObject::Copy>("copy"),
          InstanceMethod<&BackendObject::Fill>("fill"),
          InstanceMethod<&BackendObject::WriteAsync>("writeAsync"),
          InstanceMethod<&BackendObject::ReadAsync>("readAsync"),
          InstanceMethod<&BackendObject::CopyAsync>("copyAsync"),
          InstanceMethod<&BackendObject::FillAsync>("fillAsync"),
          InstanceMethod<&BackendObject::ExportIpcHandle>("exportIpcHandle"),
          InstanceMethod<&BackendObject::OpenIpcHandle>("openIpcHandle"),
          InstanceMethod<&BackendObject::LiveChunks>("liveChunks"),
          InstanceMethod<&BackendObject::SettleReleases>("settleReleases"),
          InstanceMethod<&BackendObject::HostView>("hostView"),
          InstanceMethod<&BackendObject::ReleaseView>("releaseView"),
      });
}

Napi::Object BackendObject::NewInstance(const Napi::Function& constructor, std::shared_ptr<BackendCore> core) {
  // The External points at this frame's shared_ptr; the constructor copies it before New returns.
  return constructor.New({Napi::External<std::shared_ptr<BackendCore>>::New(constructor.Env(), &core)});
}

BackendObject::BackendObject(const Napi::CallbackInfo& info) : ObjectWrap<BackendObject>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "NativeBackend cannot be constructed directly: use createBackend()");
  }
  core_ = *info[0].As<Napi::External<std::shared_ptr<BackendCore>>>().Data();
}

BackendObject::~BackendObject() {
  // Async operations keep this object alive until they settle, host views do not: their chunks stay.
  if (core_) core_->CloseUnpinned();
}

Napi::Value BackendObject::Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), core_->backend().name()); }

Napi::Value BackendObject::DeviceCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), core_->backend().DeviceCount()); }

Napi::Value BackendObject::DeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const int device = core_->CheckDevice(ReadSafeInteger(info[0], "device"));
    const tensormem::DeviceInfo device_info = core_->backend().QueryDevice(device);
    Napi::Object result = Napi::Object::New(env);
    result.Set("index", Napi::Number::New(env, device));
    result.Set("name", Napi::String::New(env, device_info.name));
    result.Set("totalBytes", Napi::Number::New(env, static_cast<double>(device_info.total_bytes)));
    result.Set("freeBytes", Napi::Number::New(env, static_cast<double>(device_info.free_bytes)));
    result.Set("computeCapability", Napi::String::New(env, device_info.compute_capability));
    return result;
  });
}

namespace {

// Chunks of zero bytes have no memory behind them; the TS layer never asks for one.
uint64_t ReadChunkBytes(const Napi::Value& value) {
  const uint64_t bytes = ReadSafeInteger(value, "bytes");
  if (bytes == 0) throw Napi::RangeError::New(value.Env(), "Expected a positive safe integer for bytes but received 0");
  return bytes;
}

}  // namespace

Napi::Value BackendObject::AllocDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const uint64_t device = ReadSafeInteger(info[0], "device");
    const uint64_t bytes = ReadChunkBytes(info[1]);
    return Napi::Number::New(env, core_->AllocDevice(device, bytes));
  });
}

Napi::Value BackendObject::AllocHost(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const uint64_t bytes = ReadChunkBytes(info[0]);
    std::string shm_name;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) throw Napi::TypeError::New(env, "Expected an object for options");
      Napi::Value name = info[1].As<Napi::Object>().Get("shmName");
      if (!name.IsUndefined()) {
        if (!name.IsString()) throw Napi::TypeError::New(env, "Expected a string for options.shmName");
        shm_name = name.As<Napi::String>().Utf8Value();
      }
    }
    return Napi::Number::New(env, core_->AllocHost(bytes, shm_name));
  });
}

Napi::Value BackendObject::MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected a string for path");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.empty() || path.find('\0') != std::string::npos) {
      throw Napi::RangeError::New(env, "Expected a non-empty string without NUL characters for path");
    }
    if (!info[1].IsObject()) throw Napi::TypeError::New(env, "Expected an object { createBytes, deleteOnFree } for options");
    Napi::Object options = info[1].As<Napi::Object>();
    const uint64_t create_bytes = ReadSafeInteger(options.Get("createBytes"), "options.createBytes");
    Napi::Value delete_on_free = options.Get("deleteOnFree");
    if (!delete_on_free.IsBoolean()) throw Napi::TypeError::New(env, "Expected a boolean for options.deleteOnFree");
    const Handle handle = core_->MapFile(path, create_bytes, delete_on_free.As<Napi::Boolean>().Value());
    Napi::Object result = Napi::Object::New(env);
    result.Set("handle", Napi::Number::New(env, handle));
    result.Set("bytes", Napi::Number::New(env, static_cast<double>(core_->table().Lookup(handle).bytes)));
    return result;
  });
}

Napi::Value BackendObject::Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    core_->Free(ReadHandle(info[0]));
    return env.Undefined();
  });
}

Napi::Value BackendObject::ChunkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const Chunk chunk = core_->table().Lookup(ReadHandle(info[0]));
    Napi::Object result = Napi::Object::New(env);
    result.Set("handle", Napi::Number::New(env, chunk.handle));
    result.Set("kind", Napi::String::New(env, chunk.kind == ChunkKind::kDevice ? "device" : "host"));
    result.Set("device", Napi::Number::New(env, chunk.device));
    result.Set("bytes", Napi::Number::New(env, static_cast<double>(chunk.bytes)));
    if (!chunk.shm_name.empty()) result.Set("shmName", Napi::String::New(env, chunk.shm_name));
    if (!chunk.file_path.empty()) result.Set("filePath", Napi::String::New(env, chunk.file_path));
    return result;
  });
}

BackendObject::PreparedOp BackendObject::PrepareWrite(const Napi::CallbackInfo& info) {
  const Handle handle = ReadHandle(info[0]);
  const uint64_t offset = ReadSafeInteger(info[1], "offset");
  Napi::Uint8Array src = ReadUint8Array(info[2], "src");
  PreparedOp prepared;
  prepared.op.kind = ChunkOp::Kind::kCopy;
  prepared.op.bytes = src.ByteLength();
  const Chunk chunk = core_->table().Lookup(handle);
  prepared.op.dst = BackendCore::Resolve(chunk, offset, prepared.op.bytes);
  prepared.op.src = PageableLocation(src.Data());
  BackendCore::CheckBufferNoOverlap(chunk, prepared.op.dst, src.Data(), prepared.op.bytes);
  prepared.chunks = {handle};
  prepared.buffer = src;
  return prepared;
}

BackendObject::PreparedOp BackendObject::PrepareRead(const Napi::CallbackInfo& info) {
  const Handle handle = ReadHandle(info[0]);
  const uint64_t offset = ReadSafeInteger(info[1], "offset");
  Napi::Uint8Array dst = ReadUint8Array(info[2], "dst");
  PreparedOp prepared;
  prepared.op.kind = ChunkOp::Kind::kCopy;
  prepared.op.bytes = dst.ByteLength();
  const Chunk chunk = core_->table().Lookup(handle);
  prepared.op.src = BackendCore::Resolve(chunk, offset, prepared.op.bytes);
  prepared.op.dst = PageableLocation(dst.Data());
  BackendCore::CheckBufferNoOverlap(chunk, prepared.op.src, dst.Data(), prepared.op.bytes);
  prepared.chunks = {handle};
  prepared.buffer = dst;
  return prepared;
}

BackendObject::PreparedOp BackendObject::PrepareCopy(const Napi::CallbackInfo& info) {
  const Handle dst_handle = ReadHandle(info[0], "dstHandle");
  const uint64_t dst_offset = ReadSafeInteger(info[1], "dstOffset");
  const Handle src_handle = ReadHandle(info[2], "srcHandle");
  const uint64_t src_offset = ReadSafeInteger(info[3], "srcOffset");
  const uint64_t bytes = ReadSafeInteger(info[4], "bytes");
  const Chunk dst = core_->table().Lookup(dst_handle);
  const Chunk src = core_->table().Lookup(src_handle);
  PreparedOp prepared;
  prepared.op.kind = ChunkOp::Kind::kCopy;
  prepared.op.bytes = bytes;
  prepared.op.dst = BackendCore::Resolve(dst, dst_offset, bytes);
  prepared.op.src = BackendCore::Resolve(src, src_offset, bytes);
  BackendCore::CheckNoOverlap(dst, dst_offset, src, src_offset, bytes);
  prepared.chunks = {dst_handle, src_handle};
  return prepared;
}

BackendObject::PreparedOp BackendObject::PrepareFill(const Napi::CallbackInfo& info) {
  const Handle handle = ReadHandle(info[0]);
  const uint64_t offset = ReadSafeInteger(info[1], "offset");
  const uint64_t bytes = ReadSafeInteger(info[2], "bytes");
  const uint64_t value = ReadSafeInteger(info[3], "value");
  if (value > 255) throw Napi::RangeError::New(info.Env(), "Expected an integer in 0..255 for value but received " + std::to_string(value));
  PreparedOp prepared;
  prepared.op.kind = ChunkOp::Kind::kFill;
  prepared.op.bytes = bytes;
  prepared.op.value = static_cast<uint8_t>(value);
  prepared.op.dst = BackendCore::Resolve(core_->table().Lookup(handle), offset, bytes);
  prepared.chunks = {handle};
  return prepared;
}

Napi::Value BackendObject::RunSync(const Napi::CallbackInfo& info, PreparedOp (BackendObject::*prepare)(const Napi::CallbackInfo&)) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    // Main thread: free() cannot run until this returns, so the chunks need no pin.
    const PreparedOp prepared = (this->*prepare)(info);
    RunChunkOp(core_->backend(), prepared.op);
    return env.Undefined();
  });
}

Napi::Value BackendObject::RunAsync(const Napi::CallbackInfo& info, PreparedOp (BackendObject::*prepare)(const Napi::CallbackInfo&)) {
  Napi::Env env = info.Env();
  try {
    return Guard(env, [&]() -> Napi::Value {
      PreparedOp prepared = (this->*prepare)(info);
      // Dropped again if anything below throws (an N-API call fails when worker.terminate() stops this
      // environment from another thread, at any point).
      OperationPins pins(core_);
      // Pins cannot fail here: the handles were looked up on this thread just now.
      for (Handle handle : prepared.chunks) pins.AcquireChunk(handle);
      std::vector<Napi::Object> keep_alive = {Value()};
      if (!prepared.buffer.IsEmpty()) {
        keep_alive.push_back(prepared.buffer);
        // The Uint8Array keeps its ArrayBuffer, not the memory behind a view or a mapping: releaseView
        // or unmapSharedMemory meanwhile would unmap it under the copy. Pin that memory too.
        const Napi::Uint8Array array = prepared.buffer.As<Napi::Uint8Array>();
        pins.Add(PinHostView(env, array));
        pins.Add(PinSharedMemoryMapping(array.Data(), array.ByteLength()));
      }
      return QueueChunkOp(env, core_, prepared.op, std::move(pins), keep_alive);
    });
  } catch (const Napi::Error& error) {
    Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(error.Value());
    return deferred.Promise();
  }
}

Napi::Value BackendObject::Write(const Napi::CallbackInfo& info) { return RunSync(info, &BackendObject::PrepareWrite); }
Napi::Value BackendObject::Read(const Napi::CallbackInfo& info) { return RunSync(info, &BackendObject::PrepareRead); }
Napi::Value BackendObject::Copy(const Napi::CallbackInfo& info) { return RunSync(info, &BackendObject::PrepareCopy); }
Napi::Value BackendObject::Fill(const Napi::CallbackInfo& info) { return RunSync(info, &BackendObject::PrepareFill); }
Napi::Value BackendObject::WriteAsync(const Napi::CallbackInfo& info) { return RunAsync(info, &BackendObject::PrepareWrite); }
Napi::Value BackendObject::ReadAsync(const Napi::CallbackInfo& info) { return RunAsync(info, &BackendObject::PrepareRead); }
Napi::Value BackendObject::CopyAsync(const Napi::CallbackInfo& info) { return RunAsync(info, &BackendObject::PrepareCopy); }
Napi::Value BackendObject::FillAsync(const Napi::CallbackInfo& info) { return RunAsync(info, &BackendObject::PrepareFill); }

Napi::Value BackendObject::ExportIpcHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const IpcHandle handle = core_->backend().ExportIpcHandle(core_->table().Lookup(ReadHandle(info[0])));
    return Napi::Buffer<uint8_t>::Copy(env, handle.data(), handle.size());
  });
}

Napi::Value BackendObject::OpenIpcHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const uint64_t device = ReadSafeInteger(info[0], "device");
    Napi::Uint8Array bytes = ReadUint8Array(info[1], "ipcHandle");
    if (bytes.ByteLength() != kIpcHandleBytes) {
      throw Napi::RangeError::New(env, "Expected " + std::to_string(kIpcHandleBytes) + " bytes for ipcHandle but received " + std::to_string(bytes.ByteLength()));
    }
    IpcHandle handle;
    std::memcpy(handle.data(), bytes.Data(), kIpcHandleBytes);
    const uint64_t size = ReadChunkBytes(info[2]);
    return Napi::Number::New(env, core_->OpenIpcHandle(device, handle, size));
  });
}

Napi::Value BackendObject::HostView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const Handle handle = ReadHandle(info[0]);
    const uint64_t offset = ReadSafeInteger(info[1], "offset");
    const uint64_t bytes = ReadSafeInteger(info[2], "bytes");
    return NewHostView(env, core_, handle, offset, bytes);
  });
}

Napi::Value BackendObject::ReleaseView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReleaseHostView(env, info[0]);
  return env.Undefined();
}

Napi::Value BackendObject::LiveChunks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const LiveTotals totals = core_->table().Totals();
  Napi::Object result = Napi::Object::New(env);
  result.Set("device", Napi::Number::New(env, static_cast<double>(totals.device_chunks)));
  result.Set("host", Napi::Number::New(env, static_cast<double>(totals.host_chunks)));
  result.Set("deviceBytes", Napi::Number::New(env, static_cast<double>(totals.device_bytes)));
  result.Set("hostBytes", Napi::Number::New(env, static_cast<double>(totals.host_bytes)));
  return result;
}

Napi::Value BackendObject::SettleReleases(const Napi::CallbackInfo& info) {
  core_->backend().SettleReleases();
  return info.Env().Undefined();
}

}  // namespace tensormem
