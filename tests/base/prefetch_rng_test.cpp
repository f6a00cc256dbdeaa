// base/prefetch_queue.h and base/rng.h: order, bounds, error propagation, cancellation; the
// seeded RNG's reproducibility and its unbiased helpers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "base/prefetch_queue.h"
#include "base/rng.h"
#include "tests/support/expect_error.h"

namespace bevkd {
namespace {

TEST(PrefetchQueue, OutOfOrderFillsComeOutInOrder) {
  PrefetchQueue<int> q(4);
  std::vector<PrefetchQueue<int>::Ticket> t;
  for (int i = 0; i < 4; ++i) t.push_back(q.reserve());
  EXPECT_FALSE(q.try_reserve().has_value());  // bounded
  std::thread filler([&] {
    for (int i = 3; i >= 0; --i) q.put(t[static_cast<size_t>(i)], i * 10);
  });
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*q.pop(), i * 10);
  filler.join();
  q.close();
  EXPECT_FALSE(q.pop().has_value());
}

TEST(PrefetchQueue, AStoredErrorIsRethrownAtItsPosition) {
  PrefetchQueue<int> q(3);
  const auto a = q.reserve(), b = q.reserve();
  q.put(a, 1);
  q.put_error(b, std::make_exception_ptr(Error("sample 7: broken")));
  EXPECT_EQ(*q.pop(), 1);
  EXPECT_ERROR_WITH(q.pop(), "sample 7: broken");
}

TEST(PrefetchQueue, CancelWakesABlockedProducerAndConsumer) {
  PrefetchQueue<int> q(1);
  (void)q.reserve();
  std::atomic<bool> producer_woke{false};
  std::thread p([&] {
    EXPECT_EQ(q.reserve(), PrefetchQueue<int>::kCancelled);
    producer_woke = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  q.cancel();
  p.join();
  EXPECT_TRUE(producer_woke);
  EXPECT_FALSE(q.pop().has_value());
}

TEST(Prefetcher, ProducesInOrderAtMostDepthAheadAndRethrows) {
  std::atomic<int> produced{0};
  {
    Prefetcher<int> p(0, 100, [&](int64_t i) {
      ++produced;
      return static_cast<int>(i * i);
    }, 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_LE(produced.load(), 3);  // 2 queued + 1 in hand
    for (int i = 0; i < 5; ++i) EXPECT_EQ(*p.next(), i * i);
  }  // destroyed early: the thread stops
  Prefetcher<int> bad(0, 10, [](int64_t i) -> int {
    if (i == 2) throw Error("item 2 failed");
    return static_cast<int>(i);
  });
  EXPECT_EQ(*bad.next(), 0);
  EXPECT_EQ(*bad.next(), 1);
  EXPECT_ERROR_WITH(bad.next(), "item 2 failed");
}

TEST(Rng, KeyedStreamsAreReproducibleAndDistinct) {
  Rng a(mix_keys(1, 2, 3)), b(mix_keys(1, 2, 3)), c(mix_keys(1, 3, 2));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(Rng(mix_keys(1, 2, 3)).next(), c.next());
  EXPECT_NE(key_of("token-a"), key_of("token-b"));
}

TEST(Rng, BelowIsInRangeAndShuffleIsAPermutation) {
  Rng r(9);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 3000; ++i) {
    const auto x = r.below(3);
    ASSERT_LT(x, 3u);
    ++counts[x];
  }
  for (int c : counts) EXPECT_NEAR(c, 1000, 150);
  std::vector<int> v(50);
  for (int i = 0; i < 50; ++i) v[static_cast<size_t>(i)] = i;
  Rng s(4);
  s.shuffle(v);
  EXPECT_EQ(std::set<int>(v.begin(), v.end()).size(), 50u);
  std::vector<int> w(50);
  for (int i = 0; i < 50; ++i) w[static_cast<size_t>(i)] = i;
  Rng s2(4);
  s2.shuffle(w);
  EXPECT_EQ(v, w);
}

}  // namespace
}  // namespace bevkd
