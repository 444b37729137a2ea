// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the data plane's upload checksum, at the
// speed of the CPU's crc32 instruction where it has one.
//
//   crc32c(data, previous = 0, portable = false) → the CRC-32C of data (a Uint8Array, Buffer included:
//     read in place, never copied) continuing from previous (the CRC of the bytes before it), unsigned
//     32-bit: crc32c(b, crc32c(a)) === crc32c(a ‖ b). portable: the table path even where the CPU has
//     the instruction (to check one against the other).
//   crc32cImplementation() → "sse4.2" (x86-64 crc32 instruction), "armv8-crc" (aarch64 CRC32
//     extension) or "table" (slicing-by-8), whichever crc32c uses on this CPU.
//
// The instruction paths are compiled with a per-function target attribute, not for the whole file, and
// chosen at run time (cpuid / getauxval), so the addon still loads and runs on a CPU without them.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace tensormem {

// The CRC-32C of [data, data + length) continuing from previous, with the fastest path this CPU has.
uint32_t Crc32c(const uint8_t* data, size_t length, uint32_t previous);
// The same with the portable table path only.
uint32_t Crc32cPortable(const uint8_t* data, size_t length, uint32_t previous);
// "sse4.2", "armv8-crc" or "table": the path Crc32c takes on this CPU.
const char* Crc32cImplementation();

void RegisterCrc32c(Napi::Env env, Napi::Object exports);

}  // namespace tensormem
