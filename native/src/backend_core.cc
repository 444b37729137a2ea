#include "backend_core.h"

#include "native_error.h"

namespace tensormem {

int BackendCore::CheckDevice(uint64_t device) const {
  const int count = backend_->DeviceCount();
  if (device >= static_cast<uint64_t>(count)) {
    throw NativeError(ErrorCode::kOutOfBounds, "device " + std::to_string(device) + " does not exist: the " + backend_->name() +
                                                   " backend has " + std::to_string(count) + " device(s)");
  }
  return static_cast<int>(device);
}

Handle BackendCore::Insert(Chunk chunk) {
  try {
    return table_.Insert(chunk);
  } catch (...) {
    backend_->Release(chunk);
    throw;
  }
}

Handle BackendCore::AllocDevice(uint64_t device, uint64_t bytes) {
  Chunk chunk;
  chunk.kind = ChunkKind::kDevice;
  chunk.device = CheckDevice(device);
  chunk.bytes = bytes;
  chunk.ptr = backend_->AllocDevice(chunk.device, bytes);
  return Insert(std::move(chunk));
}

Handle BackendCore::AllocHost(uint64_t bytes, const std::string& shm_name) {
  Chunk chunk;
  chunk.kind = ChunkKind::kHost;
  chunk.bytes = bytes;
  chunk.shm_name = shm_name;
  chunk.ptr = backend_->AllocHost(bytes, shm_name);
  return Insert(std::move(chunk));
}

Handle BackendCore::MapFile(const std::string& path, uint64_t create_bytes, bool delete_on_free) {
  const FileMapping mapping = backend_->MapFile(path, create_bytes, delete_on_free);
  Chunk chunk;
  chunk.kind = ChunkKind::kHost;
  chunk.ptr = mapping.ptr;
  chunk.bytes = mapping.bytes;
  chunk.file_path = path;
  return Insert(std::move(chunk));
}

Handle BackendCore::OpenIpcHandle(uint64_t device, const IpcHandle& handle, uint64_t bytes) {
  Chunk chunk;
  chunk.kind = ChunkKind::kDevice;
  chunk.device = CheckDevice(device);
  chunk.bytes = bytes;
  chunk.ipc_opened = true;
  chunk.ptr = backend_->OpenIpcHandle(chunk.device, handle);
  return Insert(std::move(chunk));
}

void BackendCore::Free(Handle handle) {
  if (auto chunk = table_.Remove(handle)) backend_->Release(*chunk);
}

void BackendCore::Unpin(Handle handle) {
  if (auto chunk = table_.Unpin(handle)) backend_->Release(*chunk);
}

Location BackendCore::Resolve(const Chunk& chunk, uint64_t offset, uint64_t length) {
  if (offset > chunk.bytes || length > chunk.bytes - offset) {
    throw NativeError(ErrorCode::kOutOfBounds, "range out of bounds: offset " + std::to_string(offset) + " + length " + std::to_string(length) +
                                                   " exceeds the " + std::to_string(chunk.bytes) + " bytes of chunk " + std::to_string(chunk.handle));
  }
  Location location;
  location.ptr = static_cast<uint8_t*>(chunk.ptr) + offset;
  location.type = chunk.kind == ChunkKind::kDevice ? MemoryType::kDevice : MemoryType::kPinnedHost;
  location.device = chunk.device;
  return location;
}

void BackendCore::CheckNoOverlap(const Chunk& dst, uint64_t dst_offset, const Chunk& src, uint64_t src_offset, uint64_t length) {
  if (dst.handle != src.handle || length == 0) return;
  // Both ranges are inside the chunk (Resolve), so these sums do not overflow.
  if (dst_offset < src_offset + length && src_offset < dst_offset + length) {
    throw NativeError(ErrorCode::kUnsupported, "copy within chunk " + std::to_string(dst.handle) + " with overlapping ranges: source offset " +
                                                   std::to_string(src_offset) + ", destination offset " + std::to_string(dst_offset) +
                                                   ", length " + std::to_string(length));
  }
}

void BackendCore::CheckBufferNoOverlap(const Chunk& chunk, const Location& chunk_range, const void* buffer, uint64_t length) {
  if (length == 0) return;
  // Both ranges are mapped memory of `length` bytes, so these sums do not overflow.
  const uintptr_t range = reinterpret_cast<uintptr_t>(chunk_range.ptr);
  const uintptr_t bytes = reinterpret_cast<uintptr_t>(buffer);
  if (range < bytes + length && bytes < range + length) {
    throw NativeError(ErrorCode::kUnsupported, "the buffer's " + std::to_string(length) + " bytes overlap the range they are copied to or from in chunk " +
                                                   std::to_string(chunk.handle) + " (a view of the same bytes)");
  }
}

void BackendCore::Close() {
  for (const Chunk& chunk : table_.Close()) backend_->Release(chunk);
  backend_->SettleReleases();
}

void BackendCore::CloseUnpinned() {
  for (const Chunk& chunk : table_.CloseUnpinned()) backend_->Release(chunk);
}

}  // namespace tensormem
