#include "native_error.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tensormem {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOutOfMemory: return "OUT_OF_MEMORY";
    case ErrorCode::kInvalidHandle: return "INVALID_HANDLE";
    case ErrorCode::kOutOfBounds: return "OUT_OF_BOUNDS";
    case ErrorCode::kCudaError: return "CUDA_ERROR";
    case ErrorCode::kUnsupported: return "UNSUPPORTED";
    case ErrorCode::kSystemError: return "SYSTEM_ERROR";
  }
  return "SYSTEM_ERROR";
}

NativeError SystemError(const std::string& what, int errnum) {
  const ErrorCode code = errnum == ENOMEM ? ErrorCode::kOutOfMemory : ErrorCode::kSystemError;
  return NativeError(code, what + " failed: " + std::strerror(errnum) + " (errno " + std::to_string(errnum) + ")", {}, errnum);
}

std::string DescribeBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 6) {
    value /= 1024.0;
    ++unit;
  }
  char iec[32];
  if (unit == 0) {
    std::snprintf(iec, sizeof iec, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(iec, sizeof iec, "%.2f %s", value, kUnits[unit]);
  }
  return std::to_string(bytes) + " bytes (" + iec + ")";
}

}  // namespace tensormem
