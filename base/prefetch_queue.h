// bevkd's one bounded prefetch queue: positions are reserved in order, filled by any thread in
// any order, and consumed in order; at most `capacity` positions are reserved and not yet
// consumed, so a fast producer never runs more than `capacity` items ahead of the consumer. A
// producer's exception is stored at its position and re-thrown by pop() there, in the
// consumer's thread (after the PyTorch C++ frontend's ChunkDataset).
//
//   PrefetchQueue<Batch> q(4);
//   // producer (or a scheduler handing work to a thread pool):
//   auto t = q.reserve();                       // blocks while 4 positions are outstanding
//   pool.run([&, t] { try { q.put(t, load(t)); } catch (...) { q.put_error(t, std::current_exception()); } });
//   q.close();                                  // after the last reservation
//   // consumer:
//   while (auto b = q.pop()) use(*b);           // in reservation order; re-throws a stored error
//
// Threading: every member is thread-safe. Exactly one thread should pop. cancel() wakes every
// waiter (reserve() then returns kCancelled and pop() returns nullopt), for shutting down.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "base/error.h"

namespace bevkd {

template <typename T>
class PrefetchQueue {
 public:
  using Ticket = std::uint64_t;
  static constexpr Ticket kCancelled = ~Ticket{0};

  explicit PrefetchQueue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  PrefetchQueue(const PrefetchQueue&) = delete;
  PrefetchQueue& operator=(const PrefetchQueue&) = delete;

  std::size_t capacity() const { return capacity_; }

  // Reserves the next position, waiting while `capacity` positions are outstanding. Returns
  // kCancelled after cancel().
  Ticket reserve() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || slots_.size() < capacity_; });
    if (cancelled_) return kCancelled;
    return reserve_locked();
  }
  // Reserves the next position if one is free now.
  std::optional<Ticket> try_reserve() {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_ || slots_.size() >= capacity_) return std::nullopt;
    return reserve_locked();
  }

  // Fills a reserved position (any thread, any order). Ignored after cancel() or clear().
  void put(Ticket t, T value) { deliver(t, std::optional<T>(std::move(value)), nullptr); }
  void put_error(Ticket t, std::exception_ptr e) { deliver(t, std::nullopt, std::move(e)); }

  // No more reservations: pop() returns nullopt once the reserved positions are consumed.
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  // The oldest position's value, waiting until it is filled; re-throws its stored error.
  // nullopt when closed (or cancelled) and nothing is reserved.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || (!slots_.empty() && slots_.front().ready) || (closed_ && slots_.empty()); });
    if (cancelled_ || slots_.empty()) return std::nullopt;
    Slot s = std::move(slots_.front());
    slots_.pop_front();
    ++first_;
    cv_.notify_all();
    lock.unlock();
    if (s.error) std::rethrow_exception(s.error);
    return std::move(s.value);
  }

  // Waits until every reserved position has been filled (e.g. before clear() while workers still
  // hold tickets).
  void wait_filled() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return pending_ == 0; });
  }
  // Drops every position (filled or not: a later put() for a dropped ticket is ignored) and
  // re-opens the queue.
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    first_ += slots_.size();
    slots_.clear();
    pending_ = 0;
    closed_ = false;
    cv_.notify_all();
  }
  // Wakes every waiter for good: reserve() returns kCancelled, pop() nullopt.
  void cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

  std::size_t outstanding() const {
    std::lock_guard<std::mutex> lock(mu_);
    return slots_.size();
  }

 private:
  struct Slot {
    bool ready = false;
    std::optional<T> value;
    std::exception_ptr error;
  };

  Ticket reserve_locked() {
    BEVKD_ASSERT(!closed_, "PrefetchQueue: reserve() after close()");
    slots_.emplace_back();
    ++pending_;
    return first_ + slots_.size() - 1;
  }
  void deliver(Ticket t, std::optional<T> value, std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_ || t < first_ || t >= first_ + slots_.size()) return;
    Slot& s = slots_[static_cast<std::size_t>(t - first_)];
    BEVKD_ASSERT(!s.ready, "PrefetchQueue: position ", t, " filled twice");
    s.value = std::move(value);
    s.error = std::move(error);
    s.ready = true;
    --pending_;
    cv_.notify_all();
  }

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Slot> slots_;
  Ticket first_ = 0;         // ticket of slots_.front()
  std::size_t pending_ = 0;  // reserved, not yet filled
  bool closed_ = false;
  bool cancelled_ = false;
};

// A background thread that produces items 0, 1, 2, ... with `produce(i)` for i in [begin, end),
// at most `depth` ahead of the consumer; next() returns them in order and re-throws the first
// producer error at its position. The destructor stops the thread (it finishes the item in hand).
template <typename T>
class Prefetcher {
 public:
  Prefetcher(std::int64_t begin, std::int64_t end, std::function<T(std::int64_t)> produce, std::size_t depth = 2)
      : queue_(depth), produce_(std::move(produce)) {
    thread_ = std::thread([this, begin, end] {
      for (std::int64_t i = begin; i < end; ++i) {
        const auto t = queue_.reserve();
        if (t == PrefetchQueue<T>::kCancelled) return;
        try {
          queue_.put(t, produce_(i));
        } catch (...) {
          queue_.put_error(t, std::current_exception());
          break;
        }
      }
      queue_.close();
    });
  }
  ~Prefetcher() {
    queue_.cancel();
    thread_.join();
  }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item; nullopt after the last one.
  std::optional<T> next() { return queue_.pop(); }

 private:
  PrefetchQueue<T> queue_;
  std::function<T(std::int64_t)> produce_;
  std::thread thread_;
};

}  // namespace bevkd
