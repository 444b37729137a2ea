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
  NativeError(ErrorCode code, const std::string& message, std::string cuda_error = {}, int system_errno = 0)
      : std::runtime_error(message), code_(code), cuda_error_(std::move(cuda_error)), system_errno_(system_errno) {}

  ErrorCode code() const { return code_; }
  // Empty unless the error came from the CUDA runtime.
  const std::string& cuda_error() const { return cuda_error_; }
  // The errno of a failed system call (SystemError); 0 for any other error.
  int system_errno() const { return system_errno_; }

 private:
  ErrorCode code_;
  std::string cuda_error_;
  int system_errno_;
};

// A failed system call: "<what> failed: <strerror> (errno N)", with N as system_errno() (the JS
// error's `errno`); ENOMEM maps to kOutOfMemory, the rest to kSystemError.
NativeError SystemError(const std::string& what, int errnum);

// "1073741824 bytes (1.00 GiB)": error messages say the number and the IEC unit.
std::string DescribeBytes(uint64_t bytes);

}  // namespace tensormem
