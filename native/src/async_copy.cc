#include "async_copy.h"

#include <optional>

#include "js_interop.h"
#include "native_error.h"

namespace tensormem {
namespace {

class ChunkOpWorker final : public Napi::AsyncWorker {
 public:
  ChunkOpWorker(Napi::Env env, std::shared_ptr<BackendCore> core, const ChunkOp& op, std::vector<Handle> pinned,
                const std::vector<Napi::Object>& keep_alive, std::vector<std::function<void()>> on_settle)
      : Napi::AsyncWorker(env, "tensormem.chunkOp"),
        deferred_(Napi::Promise::Deferred::New(env)),
        core_(std::move(core)),
        op_(op),
        pinned_(std::move(pinned)),
        on_settle_(std::move(on_settle)) {
    for (const Napi::Object& value : keep_alive) keep_alive_.push_back(Napi::Persistent(value));
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Worker thread: no JS values here.
  void Execute() override {
    if (!core_->table().BeginExecute()) {
      Fail(NativeError(ErrorCode::kSystemError, "the backend was closed before the operation ran"));
      return;
    }
    try {
      RunChunkOp(core_->backend(), op_);
    } catch (const NativeError& error) {
      Fail(error);
    } catch (const std::exception& error) {
      Fail(NativeError(ErrorCode::kSystemError, error.what()));
    }
    core_->table().EndExecute();
  }

  void OnOK() override {
    UnpinAll();
    deferred_.Resolve(Env().Undefined());
  }

  void OnError(const Napi::Error& /* message only; error_ has the code */) override {
    UnpinAll();
    deferred_.Reject(ToJsError(Env(), *error_).Value());
  }

 private:
  void Fail(const NativeError& error) {
    error_.emplace(error);
    SetError(error.what());
  }

  void UnpinAll() {
    for (Handle handle : pinned_) core_->Unpin(handle);
    pinned_.clear();
    for (const auto& unpin : on_settle_) unpin();
    on_settle_.clear();
  }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<BackendCore> core_;
  const ChunkOp op_;
  std::vector<Handle> pinned_;
  std::vector<std::function<void()>> on_settle_;
  std::vector<Napi::ObjectReference> keep_alive_;
  std::optional<NativeError> error_;
};

}  // namespace

Napi::Promise QueueChunkOp(Napi::Env env, std::shared_ptr<BackendCore> core, const ChunkOp& op, std::vector<Handle> pinned,
                           const std::vector<Napi::Object>& keep_alive, std::vector<std::function<void()>> on_settle) {
  // Owned by node-addon-api from Queue() on: deleted after OnOK/OnError.
  auto* worker = new ChunkOpWorker(env, std::move(core), op, std::move(pinned), keep_alive, std::move(on_settle));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace tensormem
