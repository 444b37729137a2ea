// The JS ↔ C++ boundary: reading arguments and turning NativeError into JS errors.
//
// The TypeScript layer validates arguments with its own messages; these readers only guarantee that
// C++ never sees a value it cannot represent: TypeError for a wrong type, RangeError for a number that
// is not a non-negative safe integer.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "native_error.h"

namespace tensormem {

// An Error whose `code` is the NativeErrorCode and, for CUDA failures, with `cudaError`.
Napi::Error ToJsError(Napi::Env env, const NativeError& error);

// A number that is an integer in [0, 2^53 - 1].
uint64_t ReadSafeInteger(const Napi::Value& value, const char* name);
// A Uint8Array (Buffer included).
Napi::Uint8Array ReadUint8Array(const Napi::Value& value, const char* name);
// ReadSafeInteger, then INVALID_HANDLE when it cannot be a handle at all.
uint32_t ReadHandle(const Napi::Value& value, const char* name = "handle");

// Runs body; a NativeError becomes the matching JS exception. Napi::Error passes through.
template <typename Body>
auto Guard(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const NativeError& error) {
    throw ToJsError(env, error);
  } catch (const std::bad_alloc&) {
    throw ToJsError(env, NativeError(ErrorCode::kOutOfMemory, "out of host memory for the addon's bookkeeping"));
  }
}

}  // namespace tensormem
