// Bad input: every way a shard can be broken gives an error that names the file, the dataset
// and (for data) the sample; corruption stays local to the samples it touches.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "storage/manifest.h"
#include "storage/shard_reader.h"
#include "storage/shard_writer.h"
#include "tests/storage/test_util.h"

extern char** environ;

namespace bevkd::storage {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

class BadShard : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_fixture_shard(path, spec, n); }
  TempDir dir;
  testing::FixtureSpec spec = testing::small_spec();
  std::int64_t n = 5;
  std::string path = dir / "shard-00000.h5";
};

TEST_F(BadShard, TruncatedFile) {
  fs::resize_file(path, fs::file_size(path) / 2);
  EXPECT_ERROR_WITH(ShardReader r(path), "shard " + path, "the file is truncated", "its HDF5 superblock says");
  fs::resize_file(path, 100);
  EXPECT_ERROR_WITH(ShardReader r(path), "shard " + path, "truncated");
}

TEST_F(BadShard, NotAnHdf5File) {
  std::ofstream(path, std::ios::trunc) << "{\"this is\": \"json\"}";
  EXPECT_ERROR_WITH(ShardReader r(path), "shard " + path, "not an HDF5 file");
  EXPECT_ERROR_WITH(ShardReader r(dir / "missing.h5"), "missing.h5: no such file");
}

TEST_F(BadShard, FlippedBytesInACompressedChunkArePinpointed) {
  const testing::ChunkLocation c = testing::locate_chunk(path, "teacher/features/neck", {2, 1, 0, 0, 0});
  ASSERT_LT(c.size, 8u * 16 * 16 * 2) << "the chunk should be zstd-compressed";
  testing::flip_bytes(path, c.address + c.size / 2, 4);

  const ShardReader r(path);  // metadata is intact: the shard opens
  EXPECT_ERROR_WITH(r.read(2), "shard " + path, "dataset teacher/features/neck, sample 2", "zstd");
  const std::vector<SampleProblem> p = r.verify_sample(2);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].field, "teacher/features/neck");
  // Every other sample, and the other fields of sample 2, still read correctly.
  for (std::int64_t i : {0, 1, 3, 4}) {
    EXPECT_TRUE(r.verify_sample(i).empty()) << i;
    EXPECT_TRUE(r.read_field(i, "teacher/features/neck").same_as(testing::make_sample(spec, i).get("teacher/features/neck")));
  }
  EXPECT_TRUE(r.read_field(2, "teacher/heatmap").same_as(testing::make_sample(spec, 2).get("teacher/heatmap")));
  ReadOptions other_view;
  other_view.view = 0;  // view 0 is another chunk
  EXPECT_NO_THROW(r.read(2, {"teacher/features/neck"}, other_view));

  const auto res = testing::run_command(testing::inspect_binary() + " verify " + path);
  EXPECT_EQ(res.status, 2) << res.output;
  EXPECT_NE(res.output.find("sample 2 (token " + testing::make_token(spec.seed, 2, 1) + "), teacher/features/neck"),
            std::string::npos)
      << res.output;
  EXPECT_NE(res.output.find("1 bad sample(s) in 1 of 1 shard(s); 4 of 5 samples OK"), std::string::npos) << res.output;
}

TEST_F(BadShard, CorruptionThatStillDecodesIsCaughtByTheChecksum) {
  // An 8-byte timestamp chunk is stored raw (zstd cannot shrink it): only the checksum notices.
  const testing::ChunkLocation c = testing::locate_chunk(path, "timestamp", {4});
  ASSERT_EQ(c.size, 8u);
  testing::flip_bytes(path, c.address, 1);
  const ShardReader r(path);
  EXPECT_NO_THROW(r.read(4));  // without verification the bad value goes through ...
  ReadOptions v;
  v.verify = true;
  EXPECT_ERROR_WITH(r.read(4, {}, v), "dataset timestamp, sample 4", "checksum mismatch", "corrupt");  // ... not with it
  EXPECT_NO_THROW(r.read(3, {}, v));
}

TEST_F(BadShard, UnknownMajorVersionIsRefused) {
  testing::set_string_attribute(path, "schema_version", "2.0");
  EXPECT_ERROR_WITH(ShardReader r(path), "shard " + path, "schema version 2.0", "reads major version 1 only",
                    "use a newer bevkd");
}

TEST_F(BadShard, NewerMinorVersionMayAddDatasets) {
  testing::create_dataset(path, "teacher/occupancy", "float32", {5, 16, 16});
  EXPECT_ERROR_WITH(ShardReader r(path),
                    "dataset teacher/occupancy is not part of schema bevkd.shard " + Schema::current().version().str(),
                    "only from a newer minor version");
  testing::set_string_attribute(path, "schema_version", "1.3");
  const ShardReader r(path);
  EXPECT_EQ(r.ignored_datasets(), (std::vector<std::string>{"teacher/occupancy"}));
  EXPECT_TRUE(r.verify_sample(0).empty());
}

TEST_F(BadShard, MissingDataset) {
  testing::delete_dataset(path, "gt/num_radar_pts");
  EXPECT_ERROR_WITH(ShardReader r(path), "shard " + path, "dataset gt/num_radar_pts is missing", "radar points");
}

TEST_F(BadShard, WrongDtype) {
  testing::create_dataset(path, "teacher/quality", "int32", {10});
  EXPECT_ERROR_WITH(ShardReader r(path), "shard " + path, "dataset teacher/quality has dtype int32",
                    "the schema says float32");
}

TEST_F(BadShard, WrongShape) {
  testing::create_dataset(path, "cams/intrinsics", "float32", {5, 6, 3, 4});
  EXPECT_ERROR_WITH(ShardReader r(path), "shard " + path, "dataset cams/intrinsics has shape [5, 6, 3, 4]",
                    "expected [N=5, CAM=6, 3, 3]");
  testing::create_dataset(path, "cams/intrinsics", "float32", {4, 6, 3, 3});
  EXPECT_ERROR_WITH(ShardReader r(path), "expected [N=5, CAM=6, 3, 3]");
}

TEST_F(BadShard, WrongOffsets) {
  testing::create_dataset(path, "gt/offsets", "int64", {3});
  EXPECT_ERROR_WITH(ShardReader r(path), "dataset gt/offsets has shape [3], expected [6] (N * 1 + 1)");
}

TEST_F(BadShard, MissingAttributesAndIncompleteShards) {
  testing::delete_attribute(path, "teacher");
  EXPECT_ERROR_WITH(ShardReader r(path), "required attribute teacher is missing");
  testing::delete_attribute(path, "num_samples");
  EXPECT_ERROR_WITH(ShardReader r(path), "the shard is incomplete", "num_samples is missing");
}

TEST_F(BadShard, PartialFileIsNamedForWhatItIs) {
  const std::string partial = partial_path(path);
  fs::rename(path, partial);
  EXPECT_ERROR_WITH(ShardReader r(partial), partial, "is an unfinished shard", "killed or crashed",
                    "No manifest lists it", "rerunning the producer");
  EXPECT_EQ(find_partial_shards(dir.path()), (std::vector<std::string>{partial}));
  Manifest m;
  EXPECT_ERROR_WITH(m.add(ManifestShard{"shard-00000.h5.partial", "train", 5, 1, 1}), "unfinished shard");
}

// ---- a writer killed in the middle of a shard ---------------------------------------------

constexpr const char* kChildEnv = "BEVKD_STORAGE_KILL_CHILD_DIR";

// The child process: writes two complete shards (saving the manifest after each, as a producer
// would), then starts a third and waits to be killed. Runs only when the parent test starts
// this binary with the environment variable set.
TEST(ShardWriterKill, DISABLED_ChildProcessWriter) {
  const char* dir = std::getenv(kChildEnv);
  if (dir == nullptr) GTEST_SKIP() << "runs only as the child of ShardWriterKill.FinishedShardsSurviveSigkill";
  const testing::FixtureSpec spec = testing::small_spec();
  Manifest manifest(testing::make_meta(spec));
  for (int s = 0; s < 2; ++s) {
    manifest.add(testing::write_fixture_shard(cat(dir, "/train/shard-0000", s, ".h5"), spec, 4), dir);
    manifest.save(cat(dir, "/", Manifest::kFileName));
  }
  ShardWriter w(cat(dir, "/train/shard-00002.h5"), testing::make_meta(spec));
  for (int i = 0; i < 3; ++i) w.append(testing::make_sample(spec, i));
  std::ofstream(cat(dir, "/ready")) << "writing shard 2\n";
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}

TEST(ShardWriterKill, FinishedShardsSurviveSigkill) {
  TempDir dir;
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string env = cat(kChildEnv, "=", dir.path());
  std::vector<std::string> args = {self, "--gtest_also_run_disabled_tests",
                                   "--gtest_filter=ShardWriterKill.DISABLED_ChildProcessWriter"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  std::string env_copy = env;
  envp.push_back(env_copy.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);  // fork + exec
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(dir / "ready") && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0) << "the child writer exited early";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(fs::exists(dir / "ready"));
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  // The finished shards are complete and listed; the interrupted one is only a .partial file.
  const std::string partial = dir / "train/shard-00002.h5.partial";
  EXPECT_TRUE(fs::exists(partial));
  EXPECT_FALSE(fs::exists(dir / "train/shard-00002.h5"));
  const Manifest m = Manifest::load(dir / Manifest::kFileName);
  ASSERT_EQ(m.shards().size(), 2u);
  const testing::FixtureSpec spec = testing::small_spec();
  for (const auto& e : m.shards()) {
    const ShardReader r(m.shard_path(e));
    EXPECT_EQ(r.num_samples(), 4);
    for (std::int64_t i = 0; i < 4; ++i) EXPECT_TRUE(r.verify_sample(i).empty());
    EXPECT_EQ(xxh64_file(m.shard_path(e)), e.xxh64);
  }
  EXPECT_ERROR_WITH(ShardReader r(partial), "is an unfinished shard");
  EXPECT_EQ(find_partial_shards(dir.path()), (std::vector<std::string>{partial}));

  // bevkd-inspect: the manifest verifies (with a warning); the .partial file is reported.
  auto res = testing::run_command(testing::inspect_binary() + " verify " + dir.path());
  EXPECT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("warning: unfinished shard " + partial), std::string::npos) << res.output;
  res = testing::run_command(testing::inspect_binary() + " summary " + partial);
  EXPECT_EQ(res.status, 1) << res.output;
  EXPECT_NE(res.output.find("is an unfinished shard"), std::string::npos) << res.output;

  // A rerun of the interrupted shard replaces the .partial file.
  testing::write_fixture_shard(dir / "train/shard-00002.h5", spec, 4);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(ShardReader(dir / "train/shard-00002.h5").num_samples(), 4);
}

}  // namespace
}  // namespace bevkd::storage
