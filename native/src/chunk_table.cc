#include "chunk_table.h"

#include <atomic>
#include <limits>

#include "native_error.h"

namespace tensormem {
namespace {

// One counter for the whole process: handles stay unique across backends and across addon instances
// loaded into several environments (worker threads).
std::atomic<uint32_t> next_handle{1};
constexpr uint32_t kMaxHandle = static_cast<uint32_t>(std::numeric_limits<int32_t>::max());

Handle NextHandle() {
  uint32_t current = next_handle.load();
  do {
    if (current > kMaxHandle) {
      throw NativeError(ErrorCode::kSystemError, "chunk handle space exhausted (" + std::to_string(kMaxHandle) + " handles issued)");
    }
  } while (!next_handle.compare_exchange_weak(current, current + 1));
  return current;
}

NativeError InvalidHandle(Handle handle, const char* why) {
  return NativeError(ErrorCode::kInvalidHandle, "invalid chunk handle " + std::to_string(handle) + ": " + why);
}

}  // namespace

Handle ChunkTable::Insert(Chunk chunk) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) throw NativeError(ErrorCode::kSystemError, "backend is closed");
  const Handle handle = NextHandle();
  chunk.handle = handle;
  entries_.emplace(handle, Entry{std::move(chunk)});
  return handle;
}

template <typename Entries>
auto& ChunkTable::LiveEntry(Entries& entries, Handle handle) {
  auto it = entries.find(handle);
  if (it == entries.end()) throw InvalidHandle(handle, "no such chunk (never allocated, or already freed)");
  if (it->second.release_pending) throw InvalidHandle(handle, "the chunk was freed");
  return it->second;
}

Chunk ChunkTable::Lookup(Handle handle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return LiveEntry(entries_, handle).chunk;
}

Chunk ChunkTable::Acquire(Handle handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& entry = LiveEntry(entries_, handle);
  ++entry.pins;
  return entry.chunk;
}

bool ChunkTable::AddPin(Handle handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(handle);
  if (it == entries_.end() || it->second.pins == 0) return false;
  ++it->second.pins;
  return true;
}

std::optional<Chunk> ChunkTable::Unpin(Handle handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(handle);
  if (it == entries_.end()) return std::nullopt;
  Entry& entry = it->second;
  if (entry.pins > 0) --entry.pins;
  if (entry.pins > 0 || !entry.release_pending) return std::nullopt;
  Chunk chunk = std::move(entry.chunk);
  entries_.erase(it);
  return chunk;
}

std::optional<Chunk> ChunkTable::Remove(Handle handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& entry = LiveEntry(entries_, handle);
  if (entry.pins > 0) {
    entry.release_pending = true;
    return std::nullopt;
  }
  Chunk chunk = std::move(entry.chunk);
  entries_.erase(handle);
  return chunk;
}

LiveTotals ChunkTable::Totals() const {
  std::lock_guard<std::mutex> lock(mutex_);
  LiveTotals totals;
  for (const auto& [handle, entry] : entries_) {
    if (entry.chunk.kind == ChunkKind::kDevice) {
      ++totals.device_chunks;
      totals.device_bytes += entry.chunk.bytes;
    } else {
      ++totals.host_chunks;
      totals.host_bytes += entry.chunk.bytes;
    }
  }
  return totals;
}

bool ChunkTable::BeginExecute() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return false;
  ++executing_;
  return true;
}

void ChunkTable::EndExecute() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (--executing_ == 0) executions_done_.notify_all();
}

std::vector<Chunk> ChunkTable::Close() {
  std::unique_lock<std::mutex> lock(mutex_);
  closed_ = true;
  executions_done_.wait(lock, [this] { return executing_ == 0; });
  std::vector<Chunk> chunks;
  chunks.reserve(entries_.size());
  for (auto& [handle, entry] : entries_) chunks.push_back(std::move(entry.chunk));
  entries_.clear();
  return chunks;
}

std::vector<Chunk> ChunkTable::CloseUnpinned() {
  std::unique_lock<std::mutex> lock(mutex_);
  closed_ = true;
  executions_done_.wait(lock, [this] { return executing_ == 0; });
  std::vector<Chunk> chunks;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.pins > 0) {
      it->second.release_pending = true;
      ++it;
    } else {
      chunks.push_back(std::move(it->second.chunk));
      it = entries_.erase(it);
    }
  }
  return chunks;
}

}  // namespace tensormem
