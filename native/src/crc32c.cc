#include "crc32c.h"

#include <cstring>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define TENSORMEM_CRC32C_X86 1
#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#define TENSORMEM_CRC32C_ARM 1
#if defined(__clang__)
#define TENSORMEM_CRC_TARGET __attribute__((target("crc")))
#else
#define TENSORMEM_CRC_TARGET __attribute__((target("+crc")))
#endif
#endif

#include "js_interop.h"

namespace tensormem {
namespace {

constexpr uint32_t kPolynomial = 0x82f63b78;

// --- the portable path: slicing-by-8, as src/crc32c.ts ------------------------------------

struct SliceTables {
  uint32_t t[8][256];
  SliceTables() {
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = n;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
      t[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t c = t[0][n];
      for (int s = 1; s < 8; s++) {
        c = t[0][c & 0xff] ^ (c >> 8);
        t[s][n] = c;
      }
    }
  }
};

const SliceTables& Slices() {
  static const SliceTables tables;
  return tables;
}

// On the raw register (no pre/post inversion).
uint32_t TableRaw(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = Slices().t;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    n--;
  }
  while (n >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= crc;
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][hi & 0xff] ^
          t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    n--;
  }
  return crc;
}

#if defined(TENSORMEM_CRC32C_X86) || defined(TENSORMEM_CRC32C_ARM)

// --- combining three interleaved streams (Mark Adler's method) --------------------------------------
// The instruction has a latency of 3 cycles and a throughput of 1: three independent streams over three
// adjacent blocks keep it busy. The first block's CRC is then moved past the next block (the CRC of the
// same register followed by that many zero bytes, a linear map applied with four byte tables) and XORed
// with the next block's CRC, which started from 0.

constexpr size_t kLongBlock = 8192;
constexpr size_t kShortBlock = 256;

uint32_t Gf2MatrixTimes(const uint32_t* matrix, uint32_t vector) {
  uint32_t sum = 0;
  for (; vector != 0; vector >>= 1, matrix++) {
    if (vector & 1) sum ^= *matrix;
  }
  return sum;
}

void Gf2MatrixSquare(uint32_t* square, const uint32_t* matrix) {
  for (int n = 0; n < 32; n++) square[n] = Gf2MatrixTimes(matrix, matrix[n]);
}

// The operator that appends `bytes` zero bytes to a raw CRC register. `bytes` must be a power of two:
// each step squares the operator and never multiplies in a lower bit of the length.
void ZerosOperator(uint32_t* even, size_t bytes) {
  uint32_t odd[32];
  odd[0] = kPolynomial;  // one zero bit
  uint32_t row = 1;
  for (int n = 1; n < 32; n++, row <<= 1) odd[n] = row;
  Gf2MatrixSquare(even, odd);  // two zero bits
  Gf2MatrixSquare(odd, even);  // four zero bits
  // Each square doubles the length: the first puts one zero byte in even, then two in odd, and so on.
  do {
    Gf2MatrixSquare(even, odd);
    bytes >>= 1;
    if (bytes == 0) return;
    Gf2MatrixSquare(odd, even);
    bytes >>= 1;
  } while (bytes != 0);
  std::memcpy(even, odd, sizeof(odd));
}

struct ShiftTables {
  uint32_t t[4][256];
  explicit ShiftTables(size_t bytes) {
    uint32_t op[32];
    ZerosOperator(op, bytes);
    for (uint32_t n = 0; n < 256; n++) {
      for (int b = 0; b < 4; b++) t[b][n] = Gf2MatrixTimes(op, n << (8 * b));
    }
  }
  uint32_t Shift(uint32_t crc) const {
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
  }
};

const ShiftTables& LongShift() {
  static const ShiftTables tables(kLongBlock);
  return tables;
}

const ShiftTables& ShortShift() {
  static const ShiftTables tables(kShortBlock);
  return tables;
}

#endif

#if defined(TENSORMEM_CRC32C_X86)

bool HasInstruction() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
}

constexpr const char* kInstructionName = "sse4.2";

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) inline uint64_t Step8(uint64_t crc, const uint8_t* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return _mm_crc32_u64(crc, word);
}
#else
__attribute__((target("sse4.2"))) inline uint64_t Step8(uint64_t crc, const uint8_t* p) {
  uint32_t lo;
  uint32_t hi;
  std::memcpy(&lo, p, 4);
  std::memcpy(&hi, p + 4, 4);
  return _mm_crc32_u32(_mm_crc32_u32(static_cast<uint32_t>(crc), lo), hi);
}
#endif

__attribute__((target("sse4.2"))) inline uint64_t Step1(uint64_t crc, uint8_t byte) {
  return _mm_crc32_u8(static_cast<uint32_t>(crc), byte);
}

#define TENSORMEM_CRC_TARGET __attribute__((target("sse4.2")))

#elif defined(TENSORMEM_CRC32C_ARM)

bool HasInstruction() { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }

constexpr const char* kInstructionName = "armv8-crc";

TENSORMEM_CRC_TARGET inline uint64_t Step8(uint64_t crc, const uint8_t* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return __crc32cd(static_cast<uint32_t>(crc), word);
}

TENSORMEM_CRC_TARGET inline uint64_t Step1(uint64_t crc, uint8_t byte) { return __crc32cb(static_cast<uint32_t>(crc), byte); }

#endif

#if defined(TENSORMEM_CRC32C_X86) || defined(TENSORMEM_CRC32C_ARM)

// Three streams over blocks of `block` bytes while 3 blocks remain; returns the raw register.
TENSORMEM_CRC_TARGET inline uint64_t Interleaved(uint64_t crc0, const uint8_t*& p, size_t& n, size_t block, const ShiftTables& shift) {
  while (n >= 3 * block) {
    uint64_t crc1 = 0;
    uint64_t crc2 = 0;
    const uint8_t* end = p + block;
    do {
      crc0 = Step8(crc0, p);
      crc1 = Step8(crc1, p + block);
      crc2 = Step8(crc2, p + 2 * block);
      p += 8;
    } while (p < end);
    crc0 = shift.Shift(static_cast<uint32_t>(crc0)) ^ static_cast<uint32_t>(crc1);
    crc0 = shift.Shift(static_cast<uint32_t>(crc0)) ^ static_cast<uint32_t>(crc2);
    p += 2 * block;
    n -= 3 * block;
  }
  return crc0;
}

TENSORMEM_CRC_TARGET uint32_t InstructionRaw(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t crc0 = crc;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc0 = Step1(crc0, *p++);
    n--;
  }
  crc0 = Interleaved(crc0, p, n, kLongBlock, LongShift());
  crc0 = Interleaved(crc0, p, n, kShortBlock, ShortShift());
  for (; n >= 8; n -= 8, p += 8) crc0 = Step8(crc0, p);
  for (; n > 0; n--) crc0 = Step1(crc0, *p++);
  return static_cast<uint32_t>(crc0);
}

bool UseInstruction() {
  static const bool use = [] {
    if (!HasInstruction()) return false;
    LongShift();  // built once, before any call can race on them (function statics are thread-safe anyway)
    ShortShift();
    return true;
  }();
  return use;
}

#else

bool UseInstruction() { return false; }
constexpr const char* kInstructionName = "table";
uint32_t InstructionRaw(uint32_t crc, const uint8_t* p, size_t n) { return TableRaw(crc, p, n); }

#endif

Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array data = ReadUint8Array(info[0], "data");
  uint32_t previous = 0;
  if (!info[1].IsUndefined()) {
    const uint64_t value = ReadSafeInteger(info[1], "previous");
    if (value > 0xffffffffull) {
      throw Napi::RangeError::New(env, "Expected an unsigned 32-bit CRC for previous but received " + std::to_string(value));
    }
    previous = static_cast<uint32_t>(value);
  }
  const bool portable = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  // A detached buffer (an unmapped shared-memory view) has length 0 and no data: nothing is read.
  const uint8_t* bytes = data.ByteLength() == 0 ? nullptr : data.Data();
  const uint32_t crc = portable ? Crc32cPortable(bytes, data.ByteLength(), previous) : Crc32c(bytes, data.ByteLength(), previous);
  return Napi::Number::New(env, crc);
}

Napi::Value Crc32cImplementationJs(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), Crc32cImplementation()); }

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t length, uint32_t previous) {
  if (length == 0) return previous;
  return ~(UseInstruction() ? InstructionRaw(~previous, data, length) : TableRaw(~previous, data, length));
}

uint32_t Crc32cPortable(const uint8_t* data, size_t length, uint32_t previous) {
  if (length == 0) return previous;
  return ~TableRaw(~previous, data, length);
}

const char* Crc32cImplementation() { return UseInstruction() ? kInstructionName : "table"; }

void RegisterCrc32c(Napi::Env env, Napi::Object exports) {
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs, "crc32c"));
  exports.Set("crc32cImplementation", Napi::Function::New(env, Crc32cImplementationJs, "crc32cImplementation"));
}

}  // namespace tensormem
