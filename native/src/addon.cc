// Module entry: createBackend(name, options) and buildInfo(); crc32c (crc32c.h), shared-memory mapping
// (shm_mapping.h) and cuDNN (cudnn_addon.h) register their own functions.
//
// Per environment (main thread or worker thread) the addon keeps the backend class and a registry of
// the cores it created; an environment cleanup hook closes every core still alive at teardown, so
// chunks forgotten by JS are released (and shared-memory objects unlinked) when Node exits normally.
#include <napi.h>

#include <memory>
#include <mutex>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "backend.h"
#include "backend_core.h"
#include "backend_object.h"
#include "crc32c.h"
#include "cudnn_addon.h"
#include "js_interop.h"
#include "native_error.h"
#include "shm_mapping.h"
#include "tensormem_build_info.h"

namespace tensormem {
namespace {

class CoreRegistry {
 public:
  void Add(const std::shared_ptr<BackendCore>& core) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Forget cores whose JS objects were collected (their finalizer closed them).
    std::vector<std::weak_ptr<BackendCore>> alive;
    for (auto& weak : cores_) {
      if (!weak.expired()) alive.push_back(std::move(weak));
    }
    alive.push_back(core);
    cores_ = std::move(alive);
  }

  void CloseAll() {
    std::vector<std::weak_ptr<BackendCore>> cores;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cores.swap(cores_);
    }
    for (auto& weak : cores) {
      if (auto core = weak.lock()) core->Close();
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::weak_ptr<BackendCore>> cores_;
};

struct AddonState {
  Napi::FunctionReference backend_class;
  std::shared_ptr<CoreRegistry> registry = std::make_shared<CoreRegistry>();
};

HostBackendOptions ReadHostOptions(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "Expected an options object with deviceCapacityBytes for the host backend");
  Napi::Object options = value.As<Napi::Object>();
  HostBackendOptions result;
  result.device_capacity_bytes = ReadSafeInteger(options.Get("deviceCapacityBytes"), "options.deviceCapacityBytes");
  Napi::Value count = options.Get("deviceCount");
  if (!count.IsUndefined()) {
    const uint64_t device_count = ReadSafeInteger(count, "options.deviceCount");
    if (device_count < 1 || device_count > 64) {
      throw Napi::RangeError::New(env, "Expected an integer in 1..64 for options.deviceCount but received " + std::to_string(device_count));
    }
    result.device_count = static_cast<int>(device_count);
  }
  Napi::Value name = options.Get("deviceName");
  if (!name.IsUndefined()) {
    if (!name.IsString()) throw Napi::TypeError::New(env, "Expected a string for options.deviceName");
    result.device_name = name.As<Napi::String>().Utf8Value();
  }
  return result;
}

std::unique_ptr<Backend> MakeBackend(Napi::Env env, const std::string& name, const Napi::Value& options) {
  if (name == "host") return CreateHostBackend(ReadHostOptions(env, options));
  if (name == "cuda") {
#ifdef TENSORMEM_WITH_CUDA
    return CreateCudaBackend();
#else
    throw NativeError(ErrorCode::kUnsupported, "CUDA backend unavailable: this addon was built without CUDA (" TENSORMEM_WITHOUT_CUDA_REASON ")");
#endif
  }
  throw Napi::TypeError::New(env, "Expected 'cuda' or 'host' for name but received \"" + name + "\"");
}

Napi::Value CreateBackendJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "Expected 'cuda' or 'host' for name");
    auto core = std::make_shared<BackendCore>(MakeBackend(env, info[0].As<Napi::String>().Utf8Value(), info[1]));
    AddonState* state = env.GetInstanceData<AddonState>();
    Napi::Object backend = BackendObject::NewInstance(state->backend_class.Value(), core);
    state->registry->Add(core);
    return backend;
  });
}

Napi::Value BuildInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
#ifdef TENSORMEM_WITH_CUDA
  result.Set("cuda", Napi::Boolean::New(env, true));
  result.Set("cudaRuntimeVersion", Napi::Number::New(env, CudaRuntimeVersion()));
#else
  result.Set("cuda", Napi::Boolean::New(env, false));
  result.Set("withoutCudaReason", Napi::String::New(env, TENSORMEM_WITHOUT_CUDA_REASON));
#endif
  return result;
}

// Gives the C heap's free memory back to the system (glibc's malloc_trim): buffers of bulk transfers,
// once freed, stay in malloc's arenas and in the resident set that --maxphysicalbytes counts. Returns
// whether any memory was given back; false where the C library has no malloc_trim.
Napi::Value TrimMallocHeapJs(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* state = new AddonState();
  state->backend_class = Napi::Persistent(BackendObject::DefineClass(env));
  env.SetInstanceData(state);  // deleted by Node at environment teardown
  std::shared_ptr<CoreRegistry> registry = state->registry;
  env.AddCleanupHook([registry] { registry->CloseAll(); });

  exports.Set("createBackend", Napi::Function::New(env, CreateBackendJs, "createBackend"));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfoJs, "buildInfo"));
  exports.Set("trimMallocHeap", Napi::Function::New(env, TrimMallocHeapJs, "trimMallocHeap"));
  RegisterSharedMemoryMapping(env, exports);
  RegisterCrc32c(env, exports);
  RegisterCudnn(env, exports);
  return exports;
}

}  // namespace
}  // namespace tensormem

// NODE_API_MODULE pastes the name into an identifier, so it takes an unqualified function.
static Napi::Object InitTensormemNative(Napi::Env env, Napi::Object exports) { return tensormem::Init(env, exports); }
NODE_API_MODULE(tensormem_native, InitTensormemNative)
