#include "async_copy.h"

#include <optional>

#include "js_interop.h"
#include "native_error.h"

namespace tensormem {
namespace {

class ChunkOpWorker final : public Napi::AsyncWorker {
 public:
  // `pins` is moved from only once the N-API calls that can fail here (terminate() of a worker thread
  // makes them fail at any point) have succeeded; a failure after that drops the member's pins.
  ChunkOpWorker(Napi::Env env, std::shared_ptr<BackendCore> core, const ChunkOp& op, OperationPins&& pins,
                const std::vector<Napi::Object>& keep_alive)
      : Napi::AsyncWorker(env, "tensormem.chunkOp"),
        deferred_(Napi::Promise::Deferred::New(env)),
        core_(std::move(core)),
        op_(op),
        pins_(std::move(pins)) {
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
    pins_.Drop();
    deferred_.Resolve(Env().Undefined());
  }

  void OnError(const Napi::Error& /* message only; error_ has the code */) override {
    pins_.Drop();
    deferred_.Reject(ToJsError(Env(), *error_).Value());
  }

 private:
  void Fail(const NativeError& error) {
    error_.emplace(error);
    SetError(error.what());
  }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<BackendCore> core_;
  const ChunkOp op_;
  OperationPins pins_;
  std::vector<Napi::ObjectReference> keep_alive_;
  std::optional<NativeError> error_;
};

}  // namespace

void OperationPins::AcquireChunk(Handle handle) {
  chunks_.reserve(chunks_.size() + 1);  // so that no allocation fails between the pin and its record
  core_->table().Acquire(handle);
  chunks_.push_back(handle);
}

void OperationPins::Add(std::function<void()> unpin) {
  if (!unpin) return;
  try {
    others_.push_back(unpin);
  } catch (...) {
    unpin();
    throw;
  }
}

void OperationPins::Drop() noexcept {
  for (Handle handle : chunks_) core_->Unpin(handle);
  chunks_.clear();
  for (const auto& unpin : others_) unpin();
  others_.clear();
}

Napi::Promise QueueChunkOp(Napi::Env env, std::shared_ptr<BackendCore> core, const ChunkOp& op, OperationPins&& pins,
                           const std::vector<Napi::Object>& keep_alive) {
  // Owned by node-addon-api from Queue() on: deleted after OnOK/OnError. Before that, a failure deletes
  // it here, which drops its pins.
  std::unique_ptr<ChunkOpWorker> worker(new ChunkOpWorker(env, std::move(core), op, std::move(pins), keep_alive));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  worker.release();
  return promise;
}

}  // namespace tensormem
