#include "js_interop.h"

#include <cmath>
#include <limits>

namespace tensormem {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

std::string Describe(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return value.As<Napi::Number>().ToString().Utf8Value();
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    default: return value.IsTypedArray() ? "a typed array other than Uint8Array" : "an object";
  }
}

}  // namespace

Napi::Error ToJsError(Napi::Env env, const NativeError& error) {
  Napi::Error js_error = Napi::Error::New(env, error.what());
  js_error.Set("code", Napi::String::New(env, ErrorCodeName(error.code())));
  if (!error.cuda_error().empty()) js_error.Set("cudaError", Napi::String::New(env, error.cuda_error()));
  if (error.system_errno() != 0) js_error.Set("errno", Napi::Number::New(env, error.system_errno()));
  return js_error;
}

uint64_t ReadSafeInteger(const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a non-negative safe integer for ") + name + " but received " + Describe(value));
  }
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0 && number <= kMaxSafeInteger && std::floor(number) == number)) {
    throw Napi::RangeError::New(value.Env(), std::string("Expected a non-negative safe integer for ") + name + " but received " + Describe(value));
  }
  return static_cast<uint64_t>(number);
}

Napi::Uint8Array ReadUint8Array(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(value.Env(), std::string("Expected a Uint8Array for ") + name + " but received " + Describe(value));
  }
  return value.As<Napi::Uint8Array>();
}

uint32_t ReadHandle(const Napi::Value& value, const char* name) {
  const uint64_t handle = ReadSafeInteger(value, name);
  if (handle == 0 || handle > std::numeric_limits<int32_t>::max()) {
    throw ToJsError(value.Env(), NativeError(ErrorCode::kInvalidHandle, "invalid chunk handle " + std::to_string(handle) + ": no such chunk"));
  }
  return static_cast<uint32_t>(handle);
}

}  // namespace tensormem
