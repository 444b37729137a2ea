// The JS face of cudnn_loader.h: cudnnLoad, cudnnFindAlgorithms, cudnnWorkspaceSize
// (typed in src/native/backend.ts, NativeCudnn). The TypeScript layer validates every descriptor field first; these
// readers only make sure C++ gets ints it can represent.
#include "cudnn_addon.h"

#include <limits>
#include <string>
#include <vector>

#include "cudnn_loader.h"
#include "js_interop.h"

namespace tensormem {
namespace {

int ReadInt(const Napi::Value& value, const std::string& name) {
  const uint64_t number = ReadSafeInteger(value, name.c_str());
  if (number > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
    throw Napi::RangeError::New(value.Env(), "Expected an integer up to 2147483647 for " + name + " but received " + std::to_string(number));
  }
  return static_cast<int>(number);
}

std::vector<int> ReadIntArray(const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (!value.IsArray()) throw Napi::TypeError::New(object.Env(), std::string("Expected an array for query.") + name);
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int> result;
  for (uint32_t i = 0; i < array.Length(); i++) result.push_back(ReadInt(array.Get(i), std::string("query.") + name + "[" + std::to_string(i) + "]"));
  return result;
}

cudnn::ConvolutionQuery ReadQuery(const Napi::Value& value) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throw Napi::TypeError::New(env, "Expected an object for query");
  Napi::Object object = value.As<Napi::Object>();
  cudnn::ConvolutionQuery query;
  const int direction = ReadInt(object.Get("direction"), "query.direction");
  if (direction > 2) throw Napi::RangeError::New(env, "Expected 0 (forward), 1 (backward data) or 2 (backward filter) for query.direction");
  query.direction = static_cast<cudnn::Direction>(direction);
  query.input_dims = ReadIntArray(object, "inputDims");
  query.filter_dims = ReadIntArray(object, "filterDims");
  query.pads = ReadIntArray(object, "pads");
  query.strides = ReadIntArray(object, "strides");
  query.dilations = ReadIntArray(object, "dilations");
  const size_t nb_dims = query.input_dims.size();
  const size_t spatial = nb_dims - 2;
  if (nb_dims < 3 || nb_dims > 8 || query.filter_dims.size() != nb_dims || query.pads.size() != spatial || query.strides.size() != spatial ||
      query.dilations.size() != spatial) {
    throw Napi::RangeError::New(env, "query: inputDims and filterDims need the same rank (3 to 8), pads/strides/dilations one entry per spatial dimension");
  }
  query.data_type = ReadInt(object.Get("dataType"), "query.dataType");
  query.compute_type = ReadInt(object.Get("computeType"), "query.computeType");
  query.math_type = ReadInt(object.Get("mathType"), "query.mathType");
  query.group_count = ReadInt(object.Get("groupCount"), "query.groupCount");
  return query;
}

Napi::Object LoadResultObject(Napi::Env env, const cudnn::LoadResult& result) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("loaded", Napi::Boolean::New(env, result.loaded));
  if (result.loaded) {
    object.Set("path", Napi::String::New(env, result.path));
    object.Set("version", Napi::Number::New(env, static_cast<double>(result.version)));
  } else {
    object.Set("error", Napi::String::New(env, result.error));
  }
  return object;
}

Napi::Value LoadJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "Expected an array of library names or paths for candidates");
  Napi::Array array = info[0].As<Napi::Array>();
  std::vector<std::string> candidates;
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value candidate = array.Get(i);
    if (!candidate.IsString()) throw Napi::TypeError::New(env, "Expected a string for candidates[" + std::to_string(i) + "]");
    candidates.push_back(candidate.As<Napi::String>().Utf8Value());
  }
  return LoadResultObject(env, cudnn::Load(candidates));
}

Napi::Value FindAlgorithmsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const int device = ReadInt(info[0], "device");
    const std::vector<cudnn::AlgorithmPerf> perfs = cudnn::FindAlgorithms(device, ReadQuery(info[1]));
    Napi::Array result = Napi::Array::New(env, perfs.size());
    for (size_t i = 0; i < perfs.size(); i++) {
      Napi::Object perf = Napi::Object::New(env);
      perf.Set("algorithm", Napi::Number::New(env, perfs[i].algorithm));
      perf.Set("status", Napi::Number::New(env, perfs[i].status));
      perf.Set("statusName", Napi::String::New(env, perfs[i].status_name));
      perf.Set("timeMs", Napi::Number::New(env, perfs[i].time_ms));
      perf.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(perfs[i].memory_bytes)));
      perf.Set("deterministic", Napi::Boolean::New(env, perfs[i].determinism == 1));
      perf.Set("mathType", Napi::Number::New(env, perfs[i].math_type));
      result.Set(static_cast<uint32_t>(i), perf);
    }
    return result;
  });
}

Napi::Value WorkspaceSizeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const int device = ReadInt(info[0], "device");
    const cudnn::ConvolutionQuery query = ReadQuery(info[1]);
    const int algorithm = ReadInt(info[2], "algorithm");
    return Napi::Number::New(env, static_cast<double>(cudnn::WorkspaceSize(device, query, algorithm)));
  });
}

}  // namespace

void RegisterCudnn(Napi::Env env, Napi::Object exports) {
  exports.Set("cudnnLoad", Napi::Function::New(env, LoadJs, "cudnnLoad"));
  exports.Set("cudnnFindAlgorithms", Napi::Function::New(env, FindAlgorithmsJs, "cudnnFindAlgorithms"));
  exports.Set("cudnnWorkspaceSize", Napi::Function::New(env, WorkspaceSizeJs, "cudnnWorkspaceSize"));
  env.AddCleanupHook([] { cudnn::ReleaseHandles(); });
}

}  // namespace tensormem
