#include "chunk_op.h"

namespace tensormem {

void RunChunkOp(Backend& backend, const ChunkOp& op) {
  if (op.bytes == 0) return;
  if (op.kind == ChunkOp::Kind::kCopy) {
    backend.Copy(op.dst, op.src, op.bytes);
  } else {
    backend.Fill(op.dst, op.value, op.bytes);
  }
}

Location PageableLocation(void* ptr) {
  Location location;
  location.ptr = ptr;
  location.type = MemoryType::kPageableHost;
  return location;
}

}  // namespace tensormem
