#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "storage/codec.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(g() & 0xFF);
  return v;
}

TEST(Codec, ShuffleMatchesHdf5DefinitionForEveryElementSize) {
  for (std::size_t itemsize : {1u, 2u, 4u, 8u, 3u}) {
    for (std::size_t n : {0u, 1u, 15u, 16u, 17u, 100u, 1000u}) {
      const std::size_t nbytes = n * itemsize + (itemsize > 1 ? 1 : 0);  // a remainder byte
      const auto src = random_bytes(nbytes, n * 31 + itemsize);
      std::vector<std::byte> shuffled(nbytes), back(nbytes);
      byte_shuffle(src.data(), shuffled.data(), nbytes, itemsize);
      const std::size_t elems = nbytes / itemsize;
      for (std::size_t i = 0; i < elems; ++i)
        for (std::size_t j = 0; j < itemsize; ++j)
          ASSERT_EQ(shuffled[j * elems + i], src[i * itemsize + j]) << itemsize << " " << n;
      for (std::size_t k = elems * itemsize; k < nbytes; ++k) ASSERT_EQ(shuffled[k], src[k]);
      byte_unshuffle(shuffled.data(), back.data(), nbytes, itemsize);
      ASSERT_EQ(back, src) << "itemsize " << itemsize << " n " << n;
    }
  }
}

TEST(Codec, ChunksRoundTripAndIncompressibleChunksAreStoredRaw) {
  std::vector<std::byte> sparse(4096 * 2, std::byte{0});
  for (std::size_t i = 0; i < sparse.size(); i += 37) sparse[i] = std::byte{0x3C};
  const auto noise = random_bytes(8192, 5);
  for (bool shuffle : {false, true}) {
    const std::vector<std::byte>* sources[] = {&sparse, &noise};
    for (const std::vector<std::byte>* src : sources) {
      EncodedChunk c;
      encode_chunk(src->data(), src->size(), 2, shuffle, CodecOptions{}, &c);
      if (src == &sparse) {
        EXPECT_EQ(c.filter_mask, 0u);
        EXPECT_LT(c.bytes.size(), src->size() / 4);
      } else {
        EXPECT_EQ(c.filter_mask, shuffle ? 0x3u : 0x1u);  // every filter skipped
        EXPECT_EQ(c.bytes.size(), src->size());
      }
      std::vector<std::byte> back(src->size());
      decode_chunk(c.bytes.data(), c.bytes.size(), c.filter_mask, shuffle, 2, back.data(), back.size());
      EXPECT_EQ(back, *src);
    }
  }
}

TEST(Codec, CorruptFramesAreReportedNotDecodedSilently) {
  std::vector<std::byte> data(20000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>((i * i) % 251 < 30 ? i % 7 : 0);
  EncodedChunk c;
  encode_chunk(data.data(), data.size(), 4, true, CodecOptions{}, &c);
  ASSERT_EQ(c.filter_mask, 0u);
  std::vector<std::byte> back(data.size());
  auto bad = c.bytes;
  bad[bad.size() / 2] ^= std::byte{0x5A};  // inside the compressed payload
  EXPECT_ERROR_WITH(decode_chunk(bad.data(), bad.size(), 0, true, 4, back.data(), back.size()), "zstd");
  bad = c.bytes;
  bad[0] ^= std::byte{0xFF};  // the frame magic
  EXPECT_ERROR_WITH(decode_chunk(bad.data(), bad.size(), 0, true, 4, back.data(), back.size()), "not a zstd frame");
  EXPECT_ERROR_WITH(decode_chunk(c.bytes.data(), c.bytes.size(), 0, true, 4, back.data(), back.size() - 4),
                    "holds 20000 bytes, the chunk has 19996");
  EXPECT_ERROR_WITH(decode_chunk(c.bytes.data(), c.bytes.size(), 0x4, true, 4, back.data(), back.size()),
                    "filter mask");
}

TEST(Codec, HexAndFileChecksums) {
  EXPECT_EQ(hex64(0x0123456789abcdefull), "0123456789abcdef");
  EXPECT_EQ(parse_hex64("0123456789abcdef", "t"), 0x0123456789abcdefull);
  EXPECT_ERROR_WITH(parse_hex64("0123", "manifest.json: shards[0].xxh64"), "shards[0].xxh64", "16 lower-case hex");
  EXPECT_EQ(xxh64("", 0), 0xEF46DB3751D8E999ull);  // XXH64 of nothing, seed 0 (reference value)
  testing::TempDir dir;
  const std::string p = dir / "f.bin";
  FILE* f = std::fopen(p.c_str(), "wb");
  const std::string text(10'000'000, 'x');
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  EXPECT_EQ(xxh64_file(p), xxh64(text.data(), text.size()));
}

}  // namespace
}  // namespace bevkd::storage
