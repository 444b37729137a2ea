// Typed errors of the addon. C++ code throws NativeError; the JS boundary (js_interop.h) turns it into
// a JS Error whose `code` is one of NativeErrorCode in src/native/backend.ts and, for CUDA failures,
// whose `cudaError` is the CUDA enum name (e.g. "cudaErrorInsufficientDriver").
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace tensormem {

enum class ErrorCode { kOutOfMemory, kInvalidHandle, kOutOfBounds, kCudaError, kUnsupported, kSystemError };

// The JS spelling of a code: "OUT_OF_MEMORY", "INVALID_HANDLE", ...
const char* ErrorCodeName(ErrorCode code);

class NativeError : public std::runtime_error {
 public:
  NativeError(ErrorCode code, const std::string& message, std::string cuda_error = {})
      : std::runtime_error(message), code_(code), cuda_error_(std::move(cuda_error)) {}

  ErrorCode code() const { return code_; }
  // Empty unless the error came from the CUDA runtime.
  const std::string& cuda_error() const { return cuda_error_; }

 private:
  ErrorCode code_;
  std::string cuda_error_;
};

// A failed system call: "<what> failed: <strerror> (errno N)"; ENOMEM maps to kOutOfMemory, the rest
// to kSystemError.
NativeError SystemError(const std::string& what, int errnum);

// "1073741824 bytes (1.00 GiB)": error messages say the number and the IEC unit.
std::string DescribeBytes(uint64_t bytes);

}  // namespace tensormem
