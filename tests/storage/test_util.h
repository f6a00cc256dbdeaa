// Shared helpers of the storage tests: temporary directories, writing fixture shards, running
// programs, expecting bevkd::Error messages, and editing HDF5 files to make them bad.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "storage/shard_writer.h"
#include "tests/storage/shard_fixture.h"

namespace bevkd::storage::testing {

// A fresh directory under the build tree for one test, removed when the object dies (unless
// BEVKD_KEEP_TEST_FILES is set).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes samples 0..n-1 of `spec` into `path`.
ShardInfo write_fixture_shard(const std::string& path, const FixtureSpec& spec, std::int64_t n,
                              WriterOptions opts = {});

// Runs a shell command; returns its exit status and stdout (+ stderr unless stdout_only).
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command, bool stdout_only = false);
std::string inspect_binary();

// Flips `count` bytes at `offset` of a file (XOR 0xFF).
void flip_bytes(const std::string& path, std::uint64_t offset, int count);
// File offset and stored size of a chunk of a dataset (coordinates of its first element).
struct ChunkLocation {
  std::uint64_t address = 0;
  std::uint64_t size = 0;
};
ChunkLocation locate_chunk(const std::string& path, const std::string& dataset, const std::vector<std::uint64_t>& coord);

// Edits of an existing shard through the HDF5 API (to produce invalid files).
void set_string_attribute(const std::string& path, const std::string& name, const std::string& value);
void delete_attribute(const std::string& path, const std::string& name);
void delete_dataset(const std::string& path, const std::string& dataset);
// Creates (or replaces) a small chunked dataset of `dtype` ("int32", "float32", "float16", ...) and shape.
void create_dataset(const std::string& path, const std::string& dataset, const std::string& dtype,
                    const std::vector<std::uint64_t>& shape);

}  // namespace bevkd::storage::testing

// Expects `stmt` to throw bevkd::Error whose message contains every one of the given strings.
#define EXPECT_ERROR_WITH(stmt, ...)                                                      \
  do {                                                                                    \
    try {                                                                                 \
      stmt;                                                                               \
      ADD_FAILURE() << "expected bevkd::Error from: " #stmt;                              \
    } catch (const ::bevkd::Error& e) {                                                   \
      for (const std::string& part : std::vector<std::string>{__VA_ARGS__})               \
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos)                    \
            << "message lacks \"" << part << "\": " << e.what();                          \
    }                                                                                     \
  } while (0)
