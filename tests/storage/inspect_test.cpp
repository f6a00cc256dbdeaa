// bevkd-inspect: the library functions and the real binary.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "base/canvas.h"
#include "base/fs.h"
#include "storage/inspect.h"
#include "storage/manifest.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

using nlohmann::json;
using testing::TempDir;

class Inspect : public ::testing::Test {
 protected:
  void SetUp() override {
    Manifest m(testing::make_meta(spec));
    WriterOptions o;
    o.codec.shuffle = true;
    m.add(testing::write_fixture_shard(shard, spec, 5, o), dir.path());
    m.save(dir / Manifest::kFileName);
  }
  TempDir dir;
  testing::FixtureSpec spec = testing::small_spec();
  std::string shard = dir / "train/shard-00000.h5";
  std::string bin = testing::inspect_binary();
};

TEST_F(Inspect, SummaryOfAShardAndOfAManifest) {
  auto res = testing::run_command(bin + " summary --json " + shard, true);
  ASSERT_EQ(res.status, 0) << res.output;
  const json j = json::parse(res.output);
  EXPECT_EQ(j.at("schema_version"), Schema::current().version().str());
  EXPECT_EQ(j.at("num_samples"), 5);
  EXPECT_EQ(j.at("teacher").at("name"), "fixture-centerpoint-pillar");
  EXPECT_EQ(j.at("bev_grid").at("shape"), json::array({16, 16}));
  bool found = false;
  for (const json& f : j.at("fields"))
    if (f.at("name") == "teacher/features/neck") {
      found = true;
      EXPECT_EQ(f.at("dtype"), "float16");
      EXPECT_EQ(f.at("shape"), json::array({5, 2, 8, 16, 16}));
      EXPECT_EQ(f.at("raw_bytes"), 5 * 2 * 8 * 16 * 16 * 2);
      EXPECT_LT(f.at("stored_bytes").get<double>(), f.at("raw_bytes").get<double>());
      EXPECT_EQ(f.at("filters"), "shuffle+zstd(3)");
    }
  EXPECT_TRUE(found);

  res = testing::run_command(bin + " summary " + dir.path());
  ASSERT_EQ(res.status, 0) << res.output;
  for (const std::string& part : std::vector<std::string>{"manifest ", "bevkd.shard " + Schema::current().version().str(), "5 in 1 shards", "train/shard-00000.h5",
                           "teacher/features/head_shared", "int8", "shuffle+zstd(3)"})
    EXPECT_NE(res.output.find(part), std::string::npos) << part << "\n" << res.output;
}

// The storage report: per-sample bytes are the summary's dataset bytes / samples; the fields
// that grow with the stored views are the teacher's; the projection is linear in frames and views.
TEST_F(Inspect, StorageReportPerSampleBytesAndProjection) {
  auto res = testing::run_command(bin + " storage --json --frames 1000 " + dir.path(), true);
  ASSERT_EQ(res.status, 0) << res.output;
  const json j = json::parse(res.output);
  const json sum = json::parse(testing::run_command(bin + " summary --json " + shard, true).output);
  EXPECT_EQ(j.at("samples"), 5);
  EXPECT_EQ(j.at("views"), 2);
  std::map<std::string, json> by;
  for (const auto& f : j.at("fields")) by[f.at("name").get<std::string>()] = f;
  for (const auto& f : sum.at("fields")) {
    const auto& r = by.at(f.at("name").get<std::string>());
    EXPECT_DOUBLE_EQ(r.at("stored_bytes_per_sample").get<double>(), f.at("stored_bytes").get<double>() / 5) << f;
    EXPECT_DOUBLE_EQ(r.at("decoded_bytes_per_sample").get<double>(), f.at("raw_bytes").get<double>() / 5) << f;
  }
  for (const char* pv : {"teacher/features/neck", "teacher/heatmap", "fg_mask", "view/bda", "teacher/boxes"})
    EXPECT_TRUE(by.at(pv).at("per_view").get<bool>()) << pv;
  for (const char* once : {"gt/boxes", "cams/intrinsics", "depth/uvd", "sample_token"})
    EXPECT_FALSE(by.at(once).at("per_view").get<bool>()) << once;
  const auto& proj = j.at("projection");
  ASSERT_EQ(proj.size(), 4u);
  const double one = proj[0].at("bytes").get<double>(), two = proj[1].at("bytes").get<double>();
  const double three = proj[2].at("bytes").get<double>();
  EXPECT_NEAR(three - two, two - one, 1e-6 * three);  // each view adds the same
  EXPECT_NEAR(two, j.at("file_bytes_per_sample").get<double>() * 1000, 1e-6 * two);  // 2 stored views = the files
  EXPECT_GT(one, 0.5 * j.at("view_independent_bytes_per_sample").get<double>() * 1000);

  res = testing::run_command(bin + " storage " + shard);
  ASSERT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("projected for 28130 frames"), std::string::npos) << res.output;
}

TEST_F(Inspect, VerifyGoodDataAndJsonOutput) {
  auto res = testing::run_command(bin + " verify " + dir.path());
  EXPECT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("verify: OK, 1 shard(s), 5 samples"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("file checksum ok"), std::string::npos) << res.output;
  res = testing::run_command(bin + " verify --json " + shard, true);
  EXPECT_EQ(res.status, 0) << res.output;
  const json j = json::parse(res.output);
  EXPECT_TRUE(j.at("ok").get<bool>());
  EXPECT_EQ(j.at("bad_samples"), 0);
}

TEST_F(Inspect, VerifyAgainstTheManifestNoticesAModifiedFile) {
  const auto c = testing::locate_chunk(shard, "gt/boxes", {0, 0});
  testing::flip_bytes(shard, c.address + c.size / 2, 2);
  const json j = inspect::verify(dir.path(), 2);
  EXPECT_FALSE(j.at("ok").get<bool>());
  const json& s = j.at("shards")[0];
  EXPECT_EQ(s.at("file_checksum"), "MISMATCH");
  // gt/boxes is one ragged chunk shared by all samples: every sample with GT rows is reported.
  std::set<std::int64_t> bad;
  for (const json& p : s.at("problems"))
    if (!p.at("sample").is_null()) {
      EXPECT_EQ(p.at("field"), "gt/boxes");
      bad.insert(p.at("sample").get<std::int64_t>());
    }
  EXPECT_FALSE(bad.empty());
  EXPECT_EQ(j.at("bad_samples"), static_cast<std::int64_t>(bad.size()));
  std::ostringstream out;
  inspect::Config cfg;
  cfg.command = "verify";
  cfg.path = dir / Manifest::kFileName;
  EXPECT_EQ(inspect::run(cfg, out), inspect::kExitBadData);
  EXPECT_NE(out.str().find("the manifest says"), std::string::npos) << out.str();
}

TEST_F(Inspect, DumpPrintsSmallArraysAndStatistics) {
  auto res = testing::run_command(
      bin + " dump " + shard + " --sample 2 --fields 'gt/*' sample_token teacher/features/neck", true);
  ASSERT_EQ(res.status, 0) << res.output;
  const json j = json::parse(res.output);
  const Sample want = testing::make_sample(spec, 2);
  const json& f = j.at("fields");
  EXPECT_EQ(f.at("sample_token").at("values"), want.get("sample_token").string_at(0));
  const Array& boxes = want.get("gt/boxes");
  ASSERT_EQ(f.at("gt/boxes").at("shape"), boxes.shape());
  for (std::int64_t r = 0; r < boxes.dim(0); ++r)
    for (int c = 0; c < 9; ++c)
      EXPECT_FLOAT_EQ(f.at("gt/boxes").at("values")[r][c].get<float>(), boxes.data<float>()[r * 9 + c]);
  const json& neck = f.at("teacher/features/neck");
  EXPECT_EQ(neck.at("checksum"), "ok");
  EXPECT_FALSE(neck.contains("values"));
  EXPECT_GT(neck.at("stats").at("zero_fraction").get<double>(), 0.3);
  EXPECT_GE(neck.at("stats").at("min").get<double>(), 0.0);  // ReLU output
  EXPECT_FALSE(f.contains("teacher/heatmap"));

  res = testing::run_command(bin + " dump " + shard + " --sample 9");
  EXPECT_EQ(res.status, 1);
  EXPECT_NE(res.output.find("sample 9 out of range (the shard has 5 samples)"), std::string::npos) << res.output;
}

TEST_F(Inspect, RenderDrawsBoxesWithXRightAndYUp) {
  const std::string png = dir / "sample.png";
  auto res = testing::run_command(bin + " render " + shard + " --sample 0 --cell-px 8 -o " + png);
  ASSERT_EQ(res.status, 0) << res.output;
  const Canvas c = load_png(png);
  // Layout of inspect_render.cpp: map panel at (10, 30), 16 x 8 px per side, legend to the right.
  EXPECT_EQ(c.width(), 10 + 128 + 10 + 260);
  const BevGrid& g = spec.grid;
  auto col = [&](double x) { return 10 + (x - g.range[0]) / g.dx * 8; };
  auto row = [&](double y) { return 30 + (g.range[4] - y) / g.dy * 8; };
  const Sample s = testing::make_sample(spec, 0);
  const Array& boxes = s.get("gt/boxes");
  const Array& labels = s.get("gt/labels");
  ASSERT_GT(boxes.dim(0), 0);
  int hits = 0;
  for (std::int64_t k = 0; k < boxes.dim(0); ++k) {
    const float* b = boxes.data<float>() + 9 * k;
    // Halfway along the heading tick (centre -> front edge) the pixel has the class colour.
    const double x = b[0] + 0.25 * b[3] * std::cos(b[6]), y = b[1] + 0.25 * b[3] * std::sin(b[6]);
    const Rgb want = colors::categorical(labels.data<std::int16_t>()[k]);
    bool hit = false;
    for (int dx = -1; dx <= 1; ++dx)
      for (int dy = -1; dy <= 1; ++dy)
        hit |= c.get(static_cast<int>(std::lround(col(x))) + dx, static_cast<int>(std::lround(row(y))) + dy) == want;
    hits += hit;
  }
  EXPECT_GE(hits, (boxes.dim(0) * 2 + 2) / 3) << hits << " of " << boxes.dim(0);

  inspect::RenderOptions o;
  o.tap = "head_shared";  // the int8 tap is dequantised
  o.view = 1;
  EXPECT_NO_THROW(inspect::render_sample(ShardReader(shard), 3, o));  // sample 3 has no boxes at all
  o.tap = "bev";
  EXPECT_ERROR_WITH(inspect::render_sample(ShardReader(shard), 0, o), "has no teacher tap \"bev\"");
}

// One letter of a root attribute's text (the teacher JSON) changed in place, so that the JSON
// stays valid: only a checksum can notice.
void flip_in_text(const std::string& path, const std::string& text) {
  std::string bytes = read_file(path);
  const std::size_t p = bytes.find(text);
  ASSERT_NE(p, std::string::npos) << text;
  bytes[p + text.size() / 2] = static_cast<char>(bytes[p + text.size() / 2] ^ 0x20);  // case of a letter
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST_F(Inspect, ShardOnlyVerifyCoversTheRootAttributes) {
  // Schema 1.2: the attribute lives in the root's object header, which HDF5 checksums.
  flip_in_text(shard, "fixture-centerpoint-pillar");
  auto res = testing::run_command(bin + " verify " + shard);
  EXPECT_EQ(res.status, 2) << res.output;
  for (const std::string& part : std::vector<std::string>{"BAD  " + shard, "the file is corrupt", "checksum", "verify: FAILED"})
    EXPECT_NE(res.output.find(part), std::string::npos) << part << "\n" << res.output;
}

TEST_F(Inspect, ALegacyShardsAttributesAreCoveredOnlyThroughItsManifest) {
  TempDir d;
  const std::string old = d / "train/shard-00000.h5";
  WriterOptions o;
  o.schema_version = SchemaVersion{1, 0};
  Manifest m(testing::make_meta(testing::small_spec(o.schema_version)));
  m.set_schema_version(o.schema_version);
  m.add(testing::write_fixture_shard(old, testing::small_spec(o.schema_version), 3, o), d.path());
  m.save(d / Manifest::kFileName);
  auto res = testing::run_command(bin + " verify " + old);
  EXPECT_EQ(res.status, 0) << res.output;
  EXPECT_NE(res.output.find("attributes not checked: a schema 1.0 shard keeps its string attributes in HDF5's "
                            "global heap, which has no checksum; verify it through its manifest"),
            std::string::npos)
      << res.output;
  flip_in_text(old, "fixture-centerpoint-pillar");  // in the global heap: nothing inside the file notices
  res = testing::run_command(bin + " verify " + old);
  EXPECT_EQ(res.status, 0) << res.output;
  res = testing::run_command(bin + " verify " + d.path());
  EXPECT_EQ(res.status, 2) << res.output;
  for (const std::string& part : {std::string("file checksum MISMATCH"), std::string("modified after it was written")})
    EXPECT_NE(res.output.find(part), std::string::npos) << part << "\n" << res.output;
}

TEST_F(Inspect, DumpExitsNonZeroWhenAFieldFailsItsChecksum) {
  const testing::ChunkLocation c = testing::locate_chunk(shard, "timestamp", {1});
  testing::flip_bytes(shard, c.address, 1);  // stored raw: only the checksum notices
  auto res = testing::run_command(bin + " dump " + shard + " --sample 1 --fields timestamp gt/labels", true);
  EXPECT_EQ(res.status, 2) << res.output;
  const json j = json::parse(res.output);
  EXPECT_NE(j.at("fields").at("timestamp").at("error").get<std::string>().find("checksum mismatch"), std::string::npos);
  EXPECT_EQ(j.at("fields").at("gt/labels").at("checksum"), "ok");
  res = testing::run_command(bin + " dump " + shard + " --sample 0 --fields timestamp", true);
  EXPECT_EQ(res.status, 0) << res.output;
}

TEST_F(Inspect, SummaryOfAManifestNamesACorruptShardAndGoesOn) {
  Manifest m = Manifest::load(dir / Manifest::kFileName);
  const std::string second = dir / "train/shard-00001.h5";
  m.add(testing::write_fixture_shard(second, spec, 4), dir.path());
  m.save(dir / Manifest::kFileName);
  // Damage the first shard's metadata: the root group's object header.
  const std::string bytes = read_file(shard);
  const std::size_t ohdr = bytes.find("OHDR");
  ASSERT_NE(ohdr, std::string::npos);
  testing::flip_bytes(shard, ohdr + 12, 1);
  auto res = testing::run_command(bin + " summary " + dir.path());
  EXPECT_EQ(res.status, 2) << res.output;
  for (const std::string& part : {std::string("CORRUPT shard train/shard-00000.h5"), std::string("the file is corrupt"),
                                  std::string("fields of train/shard-00001.h5")})
    EXPECT_NE(res.output.find(part), std::string::npos) << part << "\n" << res.output;
  res = testing::run_command(bin + " verify " + dir.path());
  EXPECT_EQ(res.status, 2) << res.output;
  EXPECT_NE(res.output.find("OK   train/shard-00001.h5"), std::string::npos) << res.output;
  EXPECT_NE(res.output.find("BAD  train/shard-00000.h5"), std::string::npos) << res.output;
  res = testing::run_command(bin + " render " + shard + " --sample 0 -o " + (dir / "x.png"));
  EXPECT_EQ(res.status, 1) << res.output;
  EXPECT_NE(res.output.find("shard " + shard), std::string::npos) << res.output;
}

}  // namespace
}  // namespace bevkd::storage
