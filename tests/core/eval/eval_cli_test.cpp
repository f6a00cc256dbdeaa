// bevkd-eval end to end: a bevkd-synth dataset (tables only) as the ground truth, results files
// written by write_results_json, the binary run as a user runs it. Its printed table must be the
// library's on the same input, and predictions equal to the kept GT must score AP 1 for every
// class present (mAP = present classes / 10).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "core/eval/filter.h"
#include "core/eval/gt_nuscenes.h"
#include "core/eval/report.h"
#include "core/eval/results_io.h"
#include "core/nuscenes/tables.h"
#include "core/synth/synth.h"
#include "tests/core/nusc_fixtures.h"
#include "tests/support/run.h"

namespace bevkd::core::eval {
namespace {

// A 3-scene synthetic v1.0-mini (scene-0061, scene-0553: mini_train; scene-0103: mini_val;
// custom splits synth_train, synth_val, synth_all), tables only, generated once per test
// process and removed when it exits.
const std::string& dataset() {
  struct Dir {
    std::string path;
    ~Dir() { std::filesystem::remove_all(path); }
  };
  static const Dir dir{[] {
    const std::string d = nusc::testing::fresh_dir("eval_cli");
    synth::SynthConfig cfg;
    cfg.out_dir = d;
    cfg.scenes = 3;
    cfg.samples_per_scene = 4;
    cfg.objects_per_scene = 50;
    cfg.tables_only = true;
    cfg.show_progress = false;
    cfg.seed = 11;
    synth::generate(cfg);
    return d;
  }()};
  return dir.path;
}

struct CliRun {
  int status;
  std::string out, err;
};

CliRun run_cli(const std::string& args) {
  static int calls = 0;
  const std::string base = dataset() + "/cli." + std::to_string(++calls);
  const std::string cmd = bevkd::testing::binary("bevkd-eval") + " " + args + " > " + base + ".out 2> " +
                          base + ".err";
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(base + ".out"), read_file(base + ".err")};
}

// The summary without its "Eval time" line (the one figure that differs between runs).
std::string without_time(const std::string& s) {
  std::istringstream in(s);
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("Eval time:", 0) != 0) out += line + "\n";
  return out;
}

// Predictions = the GT boxes that survive the filters, scores descending in file order.
EvalBoxes kept_gt_as_predictions(const GroundTruth& gt) {
  EvalBoxes kept = gt.boxes;
  add_ego_translation(kept, gt);
  filter_eval_boxes(kept, gt, DetectionConfig::cvpr_2019());
  EvalBoxes preds;
  double score = 0.99;
  for (std::size_t s = 0; s < kept.num_samples(); ++s) {
    std::vector<EvalBox> boxes = kept.boxes(s);
    for (EvalBox& b : boxes) {
      b.score = score *= 0.995;
      b.num_pts = -1;
      if (std::isnan(b.velocity[0])) b.velocity = {0, 0};
    }
    preds.add_sample(kept.token(s), std::move(boxes));
  }
  return preds;
}

TEST(EvalCli, KeptGroundTruthScoresApOneForEveryPresentClass) {
  const nusc::NuScenes db = nusc::NuScenes::load(dataset(), "v1.0-mini");
  const GroundTruth gt = nuscenes_ground_truth(db, "mini_val");
  ASSERT_EQ(gt.split_kind, SplitKind::kPredefined);
  ASSERT_EQ(gt.boxes.num_samples(), 4u);  // scene-0103
  const EvalBoxes preds = kept_gt_as_predictions(gt);
  const std::string results = dataset() + "/kept.json";
  write_results_json(results, preds, ResultsMeta{true, false, false, false, false});

  const CliRun r = run_cli(results + " --dataroot " + dataset() + " --version v1.0-mini --split mini_val --output-dir " +
                        dataset() + "/out_kept --quiet");
  ASSERT_EQ(r.status, 0) << r.err;
  const EvalResult lib = evaluate(gt, preds, DetectionConfig::cvpr_2019());
  EXPECT_EQ(without_time(r.out), without_time(format_summary(lib.metrics)));
  EXPECT_TRUE(path_exists(dataset() + "/out_kept/metrics_summary.json"));
  EXPECT_TRUE(path_exists(dataset() + "/out_kept/eval_config.json"));
  EXPECT_TRUE(path_exists(dataset() + "/out_kept/plots/car_pr.png"));

  // Every prediction is an exact TP: AP 1 where the class has kept GT, 0 where not.
  int present = 0;
  for (int label = 0; label < kNumClasses; ++label) {
    const double ap = lib.metrics.mean_dist_ap(label);
    bool has_gt = false;
    for (std::size_t s = 0; s < preds.num_samples(); ++s)
      for (const EvalBox& b : preds.boxes(s)) has_gt |= b.label == label;
    EXPECT_NEAR(ap, has_gt ? 1.0 : 0.0, 1e-12) << kClassNames[static_cast<std::size_t>(label)];
    if (has_gt) {
      ++present;
      EXPECT_NEAR(lib.metrics.tp_error(label, TpMetric::kTrans), 0.0, 1e-12);
      EXPECT_NEAR(lib.metrics.tp_error(label, TpMetric::kScale), 0.0, 1e-12);
    }
  }
  EXPECT_GE(present, 3);
  EXPECT_NEAR(lib.metrics.mean_ap, present / 10.0, 1e-12);
}

TEST(EvalCli, CustomSplitIgnoresExtraSamplesAndScenesSelect) {
  // Results for all 12 samples. synth_val (custom, = scene-0103) ignores the 8 extra samples and
  // gives the same numbers as mini_val with exactly its samples; so does --scenes scene-0103.
  const nusc::NuScenes db = nusc::NuScenes::load(dataset(), "v1.0-mini");
  const GroundTruth all = nuscenes_ground_truth(db, "synth_all");
  ASSERT_EQ(all.split_kind, SplitKind::kCustom);
  ASSERT_EQ(all.boxes.num_samples(), 12u);
  const std::string results_all = dataset() + "/all.json";
  write_results_json(results_all, kept_gt_as_predictions(all), ResultsMeta{});
  const GroundTruth val = nuscenes_ground_truth(db, "mini_val");
  EvalBoxes val_only;
  const EvalBoxes preds_all = kept_gt_as_predictions(all);
  for (const std::string& t : val.boxes.tokens()) val_only.add_sample(t, preds_all.boxes(static_cast<std::size_t>(preds_all.index_of(t))));
  const std::string results_val = dataset() + "/val.json";
  write_results_json(results_val, val_only, ResultsMeta{});

  const std::string common = " --dataroot " + dataset() + " --version v1.0-mini --quiet --no-plots --output-dir ";
  const CliRun custom = run_cli(results_all + common + dataset() + "/out_custom --split synth_val");
  const CliRun scenes = run_cli(results_all + common + dataset() + "/out_scenes --scenes scene-0103");
  const CliRun predefined = run_cli(results_val + common + dataset() + "/out_pre --split mini_val");
  ASSERT_EQ(custom.status, 0) << custom.err;
  ASSERT_EQ(scenes.status, 0) << scenes.err;
  ASSERT_EQ(predefined.status, 0) << predefined.err;
  EXPECT_EQ(without_time(custom.out), without_time(predefined.out));
  EXPECT_EQ(without_time(scenes.out), without_time(predefined.out));
  EXPECT_FALSE(path_exists(dataset() + "/out_custom/plots"));
  // A predefined split refuses the extra samples.
  const CliRun strict = run_cli(results_all + common + dataset() + "/out_strict --split mini_val");
  EXPECT_EQ(strict.status, 1);
  EXPECT_NE(strict.err.find("error: " + results_all +
                            ": 8 result samples are not part of v1.0-mini split mini_val (for a predefined split the "
                            "results must hold exactly its samples)"),
            std::string::npos)
      << strict.err;
}

TEST(EvalCli, ErrorsExitWithAMessage) {
  const nusc::NuScenes db = nusc::NuScenes::load(dataset(), "v1.0-mini");
  const GroundTruth gt = nuscenes_ground_truth(db, "synth_all");
  EvalBoxes preds = kept_gt_as_predictions(gt);
  // One sample missing.
  EvalBoxes missing;
  for (std::size_t s = 1; s < preds.num_samples(); ++s) missing.add_sample(preds.token(s), preds.boxes(s));
  const std::string path = dataset() + "/missing.json";
  write_results_json(path, missing, ResultsMeta{});
  const std::string args = " --dataroot " + dataset() + " --version v1.0-mini --quiet --split synth_all";
  CliRun r = run_cli(path + args);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("error: " + path + ": 1 of the 12 samples of v1.0-mini split synth_all are missing from the results"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(preds.token(0)), std::string::npos) << r.err;
  // A bad box: the message names the file, the sample, the box and the field.
  std::string text = results_json(preds, ResultsMeta{});
  const std::string needle = "\"size\": [";
  const auto at = text.find(needle);
  ASSERT_NE(at, std::string::npos);
  text.insert(at + needle.size(), "-");
  const std::string bad = dataset() + "/bad.json";
  write_file_atomic(bad, text);
  r = run_cli(bad + args);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("error: " + bad + ": results[\"" + preds.token(0) + "\"][0].size[0]: sizes [w, l, h] must be > 0"),
            std::string::npos)
      << r.err;
  // An unknown split and a version that does not fit a predefined one.
  r = run_cli(path + " --dataroot " + dataset() + " --version v1.0-mini --quiet --split nosuch");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;
  r = run_cli(path + " --dataroot " + dataset() + " --version v1.0-mini --quiet --split val");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("trainval"), std::string::npos) << r.err;
  // No ground truth, or two sources at once.
  r = run_cli(path);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("bevkd-eval: error: no ground truth given (--dataroot with --version and --split or --scenes, "
                       "or --shards with --split)"),
            std::string::npos)
      << r.err;
  r = run_cli(path + " --dataroot " + dataset() + " --shards x --split val");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("give one ground truth source, --dataroot or --shards, not both"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace bevkd::core::eval
