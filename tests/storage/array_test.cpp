#include <gtest/gtest.h>

#include <cstring>

#include "storage/array.h"
#include "storage/half.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

TEST(Array, TypedAccessStringsAndCopies) {
  Array a = Array::of<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(a.describe(), "float32 [2, 3]");
  EXPECT_EQ(a.nbytes(), 24u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.raw()) % 64, 0u);
  EXPECT_EQ(a.value_as_double(4), 5.0);
  EXPECT_ERROR_WITH(a.data<std::int32_t>(), "array of float32 [2, 3] accessed as int32");
  EXPECT_ERROR_WITH(Array::of<float>({2}, {1, 2, 3}), "needs 2 values, got 3");
  Array b = a.clone();
  EXPECT_TRUE(b.same_as(a));
  b.data<float>()[0] = 9;
  EXPECT_FALSE(b.same_as(a));

  Array h(DType::kFloat16, {2});
  h.data<std::uint16_t>()[1] = float_to_half(-1.5f);
  EXPECT_EQ(h.value_as_double(0), 0.0);  // zero-filled
  EXPECT_EQ(h.value_as_double(1), -1.5);

  Array s = Array::strings({2}, {"ab", ""}, 4);
  EXPECT_EQ(s.string_at(0), "ab");
  EXPECT_EQ(s.string_at(1), "");
  EXPECT_ERROR_WITH(s.set_string(0, "abcde"), "\"abcde\" has 5 bytes", "fixed length 4");

  const Array empty(DType::kInt32, {0, 9});
  EXPECT_TRUE(empty.empty());
  EXPECT_NE(empty.raw(), nullptr);
}

TEST(Array, LargeBuffersAreRecycled) {
  Array::release_pooled_buffers();
  const std::vector<std::int64_t> shape{3, 1024, 1024};  // 6 MiB of float16
  const void* first = nullptr;
  {
    Array a = Array::uninitialized(DType::kFloat16, shape);
    std::memset(a.raw(), 0xAB, a.nbytes());
    first = a.raw();
  }
  {
    Array again(DType::kFloat16, shape);  // the same buffer, and zero-filled as promised
    EXPECT_EQ(again.raw(), first);
    for (std::int64_t k = 0; k < again.numel(); k += 4099) ASSERT_EQ(again.data<std::uint16_t>()[k], 0);
    Array bigger = Array::uninitialized(DType::kFloat16, {4, 1024, 1024});  // 33% larger: not that one
    EXPECT_NE(bigger.raw(), first);
  }
  Array::release_pooled_buffers();
}

}  // namespace
}  // namespace bevkd::storage
