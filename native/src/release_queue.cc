#include "release_queue.h"

#include <utility>

namespace tensormem {

ReleaseQueue::~ReleaseQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_posted_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReleaseQueue::Post(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  jobs_.push_back(std::move(job));
  work_posted_.notify_one();
}

void ReleaseQueue::WaitIdle() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return jobs_.empty() && !running_job_; });
}

uint64_t ReleaseQueue::Completed() {
  std::lock_guard<std::mutex> lock(mutex_);
  return completed_;
}

void ReleaseQueue::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_posted_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    // Stopping still runs what is queued: each job gives memory back to the driver.
    if (jobs_.empty()) return;
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    running_job_ = true;
    lock.unlock();
    job();
    lock.lock();
    running_job_ = false;
    completed_++;
    if (jobs_.empty()) idle_.notify_all();
  }
}

}  // namespace tensormem
