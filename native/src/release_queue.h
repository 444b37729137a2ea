// Chunk releases that may wait for the device, run in order on one thread of their own.
//
// cudaFree (and cudaIpcCloseMemHandle) synchronize the device: they return only when every copy and
// kernel already queued on it has finished. Called on Node's main thread, a chunk freed during another
// client's 10 GB copy would hold every call the daemon serves until that copy ends. Posted here
// instead, only this thread waits.
//
// A release posted here is not done when Post returns: its memory is still the driver's "used" until
// the job runs. WaitIdle() is for the callers that need it done: an allocation the device refused
// (the memory it needs may be on its way back) and shutdown. The destructor runs what is queued, then
// joins.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tensormem {

class ReleaseQueue {
 public:
  ReleaseQueue() = default;
  ~ReleaseQueue();
  ReleaseQueue(const ReleaseQueue&) = delete;
  ReleaseQueue& operator=(const ReleaseQueue&) = delete;

  // Queues the job (which must not throw) and starts the thread on first use. Throws (std::bad_alloc,
  // std::system_error) when it cannot; the caller then runs the job itself.
  void Post(std::function<void()> job);
  // Returns once every job posted before the call has run. Safe from any thread but this queue's own.
  void WaitIdle();
  // Jobs that have run so far: an allocation compares it before and after it was refused, to tell
  // whether memory came back meanwhile.
  uint64_t Completed();

 private:
  void Run();

  std::mutex mutex_;
  std::condition_variable work_posted_;
  std::condition_variable idle_;
  std::deque<std::function<void()>> jobs_;
  bool running_job_ = false;
  bool stopping_ = false;
  uint64_t completed_ = 0;
  std::thread thread_;
};

}  // namespace tensormem
