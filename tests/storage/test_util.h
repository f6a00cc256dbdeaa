// Helpers of the storage tests: writing fixture shards and editing HDF5 files to make them bad.
// Temporary directories, running programs and the error matcher come from tests/support/.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "storage/shard_writer.h"
#include "tests/support/expect_error.h"
#include "tests/support/run.h"
#include "tests/support/shard_fixture.h"
#include "tests/support/temp_dir.h"

namespace bevkd::storage::testing {

using bevkd::testing::CommandResult;
using bevkd::testing::run_command;
using bevkd::testing::TempDir;

// Writes samples 0..n-1 of `spec` into `path`.
ShardInfo write_fixture_shard(const std::string& path, const FixtureSpec& spec, std::int64_t n,
                              WriterOptions opts = {});

inline std::string inspect_binary() { return bevkd::testing::binary("bevkd-inspect"); }

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

