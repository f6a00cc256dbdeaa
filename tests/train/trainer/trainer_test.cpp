// bevkd-train's trainer: the depth loss by hand, the configuration, and whole training runs of the
// tiny student on the loader's fixture datasets (shards + JPEGs): exact resume, the NaN guard,
// refusals at start-up, and evaluation through core/eval.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "base/config.h"
#include "base/fs.h"
#include "core/nn/checkpoint.h"
#include "core/nn/metrics_log.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "tests/train/data/loader_fixture.h"
#include "train/probe/probe.h"
#include "train/probe/registry.h"
#include "train/student/depth_loss.h"
#include "train/trainer/fd3d_head_run.h"
#include "train/trainer/loss_registry.h"
#include "train/trainer/trainer.h"

namespace bevkd::train::trainer {
namespace {

using nlohmann::json;
namespace dt = data::testing;

// ---- depth loss ----------------------------------------------------------------------------

TEST(DepthLoss, BinaryCrossEntropyOverForegroundCellsByHand) {
  student::DepthBins bins{2.0, 10.0, 2.0, "center"};  // 4 bins: [2,4) [4,6) [6,8) [8,10)
  // B = 1, N = 1, D = 4, h = 1, w = 3: cell 0 holds 5.0 m (bin 1), cell 1 no point, cell 2 at 11 m (out of range).
  // Cells are the last axis: depth[0][0][k][0][cell].
  auto depth = torch::zeros({1, 1, 4, 1, 3});
  const float c0[4] = {0.1f, 0.6f, 0.2f, 0.1f};
  const float c1[4] = {0.25f, 0.25f, 0.25f, 0.25f};
  const float c2[4] = {0.7f, 0.1f, 0.1f, 0.1f};
  for (int k = 0; k < 4; ++k) {
    depth[0][0][k][0][0] = c0[k];
    depth[0][0][k][0][1] = c1[k];
    depth[0][0][k][0][2] = c2[k];
  }
  auto target = torch::tensor({5.0f, 0.0f, 11.0f}).view({1, 1, 1, 3});
  const auto r = student::depth_loss(depth, target, bins, 3.0);
  EXPECT_EQ(r.foreground_cells, 1);
  // One cell, y = (0, 1, 0, 0): -[log 0.9 + log 0.6 + log 0.8 + log 0.9].
  const double want = -3.0 * (std::log(0.9) + std::log(0.6) + std::log(0.8) + std::log(0.9));
  EXPECT_NEAR(r.total.item<double>(), want, 1e-5);
  // A depth exactly on a bin edge goes to the upper bin; the max is exclusive.
  target = torch::tensor({4.0f, 10.0f, 2.0f}).view({1, 1, 1, 3});
  const auto e = student::depth_loss(depth, target, bins, 1.0);
  EXPECT_EQ(e.foreground_cells, 2);
  const double want_e = (-(std::log(0.9) + std::log(0.6) + std::log(0.8) + std::log(0.9)) -
                         (std::log(0.7) + 3 * std::log(0.9))) / 2.0;
  EXPECT_NEAR(e.total.item<double>(), want_e, 1e-5);
  // Gradient flows to the probabilities of foreground cells only.
  auto d = depth.clone().requires_grad_(true);
  student::depth_loss(d, target, bins, 1.0).total.backward();
  EXPECT_EQ(d.grad().select(4, 1).abs().sum().item<double>(), 0.0);
  EXPECT_GT(d.grad().select(4, 0).abs().sum().item<double>(), 0.0);
  // Shapes that disagree are named.
  EXPECT_ERROR_WITH(student::depth_loss(depth, torch::zeros({1, 1, 2, 3}), bins, 1.0), "depth targets [1, 1, 2, 3]",
                    "[1, 1, 4, 1, 3]", "depth_stride");
  EXPECT_ERROR_WITH(student::depth_loss(torch::zeros({1, 1, 5, 1, 3}), target, bins, 1.0), "[B, N, 4, h, w]");
}

// ---- configuration -------------------------------------------------------------------------

TEST(TrainConfig, LossSpecsAndFlags) {
  TrainConfig c;
  c.losses = {parse_loss_flag("x"), parse_loss_flag("y:0.5")};
  c.losses[0].params = {{"tap", "neck"}};
  EXPECT_TRUE(std::isnan(c.losses[0].weight));
  EXPECT_DOUBLE_EQ(c.losses[1].weight, 0.5);
  const json j = config::to_json(c);
  EXPECT_EQ(j.at("optimisation").at("losses").at(0), (json{{"name", "x"}, {"tap", "neck"}}));
  TrainConfig back;
  config::from_json(j, back, "test");
  ASSERT_EQ(back.losses.size(), 2u);
  EXPECT_EQ(back.losses[0].params.at("tap"), "neck");
  EXPECT_DOUBLE_EQ(back.losses[1].weight, 0.5);
  EXPECT_EQ(config::to_json(back), j);
  EXPECT_ERROR_WITH(parse_loss_flag("y:abc"), "--loss 'y:abc'", "not a number");
  EXPECT_ERROR_WITH(find_loss("no_such_loss"), "unknown distillation loss 'no_such_loss'", "registry holds");
  c.shards = "s";
  c.dataroot = "d";
  c.out_dir = "o";
  c.losses.push_back(parse_loss_flag("x"));
  EXPECT_ERROR_WITH(c.validate(), "loss x is listed twice");
  c.losses.clear();
  c.precision = "bf16";
  EXPECT_ERROR_WITH(c.validate(), "--precision bf16 is autocast on CUDA", "cpu");
}

// The trainer's registry names the loss-probe entries that check each loss and takes the
// parameters it shares with them from the probe registry; loss-probe --list --json lists both.
TEST(LossRegistry, SharedParametersComeFromTheProbeRegistryAndTheProbeListsTheTrainer) {
  const auto& probes = probe::probe_registry();
  for (const auto& e : loss_registry()) {
    ASSERT_FALSE(e.probe_losses.empty()) << e.name;
    for (const auto& n : e.probe_losses) EXPECT_NE(probes.find(n), nullptr) << e.name << " -> " << n;
    for (const auto& [tk, qualified] : e.probe_params) {
      // "key" is a key of the first probe entry, "entry.key" one of another.
      const auto dot = qualified.find('.');
      const auto* pe = probes.find(dot == std::string::npos ? e.probe_losses.front() : qualified.substr(0, dot));
      ASSERT_NE(pe, nullptr) << e.name << "." << tk;
      const std::string pk = dot == std::string::npos ? qualified : qualified.substr(dot + 1);
      bool found = false;
      for (const auto& ps : pe->params)
        if (ps.key == pk) {
          found = true;
          ASSERT_TRUE(ps.default_value.has_value()) << pk;
          EXPECT_EQ(e.default_params.at(tk), *ps.default_value) << e.name << "." << tk << " vs " << pe->name << "." << pk;
        }
      EXPECT_TRUE(found) << e.name << "." << tk << " -> " << pk;
    }
  }
  EXPECT_EQ(find_loss("bevdistill_box").default_params.at("loss_weight"), 0.25);
  EXPECT_EQ(find_loss("tig_inner_feature").default_params.at("sample_num"), 24);
  const auto listed = json::parse(probe::list_json(probes, loss_registry_json()));
  ASSERT_TRUE(listed.contains("losses"));
  ASSERT_EQ(listed.at("trainer_losses").size(), loss_registry().size());
  for (std::size_t i = 0; i < loss_registry().size(); ++i) {
    const auto& t = listed.at("trainer_losses").at(i);
    EXPECT_EQ(t.at("name"), loss_registry()[i].name);
    EXPECT_EQ(t.at("params"), loss_registry()[i].default_params);
  }
  const auto box = listed.at("trainer_losses");
  const auto it = std::find_if(box.begin(), box.end(), [](const json& t) { return t.at("name") == "bevdistill_box"; });
  ASSERT_NE(it, box.end());
  EXPECT_EQ(it->at("shard_fields"), json({"teacher/boxes", "teacher/class_probs"}));
  EXPECT_EQ(it->at("probe_params").at("loss_weight"), "loss_weight_l1");
}

// ---- training runs -------------------------------------------------------------------------

class TrainRunTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new bevkd::testing::TempDir();
    dt::LoaderDatasetSpec spec;
    spec.shard_sizes = {4, 4};
    spec.points_per_camera = 12;
    data_ = new dt::LoaderDataset(dt::make_loader_dataset(spec, dir_->path()));
  }
  static void TearDownTestSuite() {
    delete data_;
    delete dir_;
  }

  // The tiny student on the fixture's 16 x 16 grid at 1.6 m, batch 2, one loader thread.
  static TrainConfig config(const std::string& out) {
    TrainConfig c;
    c.shards = data_->manifest_path;
    c.dataroot = data_->dataroot;
    c.train_split = "train";
    c.student = student::student_preset("tiny");
    c.student.grid = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 1.6);
    c.student.decode.post_center_range = {-20, -20, -10, 20, 20, 10};
    c.loader.batch_size = 2;
    c.loader.threads = 1;
    c.loader.seed = 7;
    c.epochs = 2;
    c.schedule.lr = 1e-3;
    c.out_dir = out;
    c.log_every = 1;
    c.threads = 1;
    c.plots = false;
    c.quiet = true;
    return c;
  }

  static std::vector<json> losses_of(const std::string& out) {
    std::vector<json> r;
    for (const auto& rec : core::nn::MetricsLog::read(out + "/metrics.jsonl"))
      if (!rec.contains("event")) r.push_back(rec);
    return r;
  }

  static bevkd::testing::TempDir* dir_;
  static dt::LoaderDataset* data_;
};
bevkd::testing::TempDir* TrainRunTest::dir_ = nullptr;
dt::LoaderDataset* TrainRunTest::data_ = nullptr;

TEST_F(TrainRunTest, ResumedRunEqualsAnUninterruptedOneBitForBit) {
  torch::set_num_threads(1);
  std::ostringstream log;
  auto full = config(dir_->path() + "/full");
  full.ema = true;
  full.ema_ramp = 2;
  const auto a = train_student(full, log);
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(a.total_steps, 8);  // 8 samples / batch 2 x 2 epochs
  EXPECT_TRUE(path_exists(full.out_dir + "/student.ckpt"));

  auto part = config(dir_->path() + "/part");
  part.ema = true;
  part.ema_ramp = 2;
  part.stop_after = 3;  // stops inside the first epoch
  part.quiet = false;
  const auto b1 = train_student(part, log);
  EXPECT_FALSE(b1.finished);
  EXPECT_EQ(b1.steps_done, 3);
  part.stop_after = 0;
  const auto b2 = train_student(part, log);
  EXPECT_TRUE(b2.finished);
  EXPECT_NE(log.str().find("resuming from"), std::string::npos) << log.str();

  const auto la = losses_of(full.out_dir), lb = losses_of(part.out_dir);
  ASSERT_EQ(la.size(), 8u);
  ASSERT_EQ(lb.size(), 8u);  // the log was cut back to step 3 and continued once
  for (std::size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i].at("step"), lb[i].at("step"));
    for (const char* k : {"loss", "loss_heatmap", "loss_bbox", "loss_depth", "grad_norm", "lr"})
      EXPECT_EQ(la[i].at(k).get<double>(), lb[i].at(k).get<double>()) << "step " << la[i].at("step") << " " << k;
  }
  // The final weights (model and EMA) are equal byte for byte.
  const auto ca = core::nn::read_checkpoint(full.out_dir + "/student.ckpt", "student");
  const auto cb = core::nn::read_checkpoint(part.out_dir + "/student.ckpt", "student");
  for (const char* m : {"model", "ema"}) {
    const auto& ma = ca.module(m, "a");
    const auto& mb = cb.module(m, "b");
    ASSERT_EQ(ma.size(), mb.size());
    for (std::size_t i = 0; i < ma.size(); ++i) EXPECT_TRUE(torch::equal(ma[i].second, mb[i].second)) << ma[i].first;
  }
  // A resume with another configuration is refused naming the difference.
  part.schedule.lr = 2e-3;
  part.epochs = 3;
  EXPECT_ERROR_WITH(train_student(part, log), "cannot resume from", "first difference at");
}

TEST_F(TrainRunTest, NonFiniteLossIsReportedWithItsStepAndStopsTheRun) {
  // An absurd learning rate: AdamW moves every weight by ~lr at step 0, so the next forward
  // overflows and the loss of step 1 is not finite.
  auto c = config(dir_->path() + "/nan");
  c.schedule.kind = "constant";
  c.schedule.warmup_fraction = 0;
  c.schedule.lr = 1e30;
  c.grad_clip = 0;
  c.max_bad_steps = 1;
  std::ostringstream log;
  EXPECT_ERROR_WITH(train_student(c, log), "stopping after 2 non-finite steps (steps 1, 2", "--max-bad-steps 1",
                    "lower --lr");
  EXPECT_NE(log.str().find("step 1: a non-finite loss"), std::string::npos) << log.str();
  bool reported = false;
  for (const auto& rec : core::nn::MetricsLog::read(c.out_dir + "/metrics.jsonl"))
    if (rec.value("event", "") == "bad_step" && rec.at("step") == 1) reported = rec.at("samples").size() == 2;
  EXPECT_TRUE(reported);
}

TEST_F(TrainRunTest, StudentGridTheShardsCannotServeIsRefusedNamingBoth) {
  auto c = config(dir_->path() + "/grid");
  c.student.grid = BevGrid::make({-19.2, -19.2, -5.0, 19.2, 19.2, 3.0}, 1.6);  // 24 x 24: another range
  std::ostringstream log;
  EXPECT_ERROR_WITH(train_student(c, log), "student grid range [-19.2, -19.2", "teacher (shard) grid range [-12.8");
  c.student.grid = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 25.6 / 12);  // 12 x 12: cells 4/3 apart
  EXPECT_ERROR_WITH(train_student(c, log), "student grid", "teacher (shard) grid");
  // The loader's image settings follow the student; setting them under loader is refused.
  c = config(dir_->path() + "/grid");
  c.loader.image.flip_prob = 0.1;
  EXPECT_ERROR_WITH(train_student(c, log), "loader.image is derived from the student", "flip_prob");
}

TEST_F(TrainRunTest, EvaluationWritesResultsAndOfficialMetrics) {
  auto c = config(dir_->path() + "/eval");
  c.epochs = 1;
  c.val_split = "train";  // the fixture has one split; evaluating on it exercises the whole path
  std::ostringstream log;
  const auto r = train_student(c, log);
  ASSERT_TRUE(r.map.has_value());
  EXPECT_GE(*r.map, 0.0);
  EXPECT_LE(*r.map, 1.0);
  EXPECT_TRUE(path_exists(r.metrics_json));
  EvalConfig e;
  e.checkpoint = c.out_dir + "/student.ckpt";
  e.shards = data_->manifest_path;
  e.dataroot = data_->dataroot;
  e.split = "train";
  e.threads = 1;
  e.quiet = true;
  e.plots = false;
  const auto ev = evaluate_checkpoint(e, log);
  EXPECT_EQ(ev.samples, 8);
  EXPECT_EQ(ev.weights, "model");
  EXPECT_DOUBLE_EQ(ev.map, *r.map);  // the same weights on the same samples
  const json results = config::read_file(ev.results_path);
  EXPECT_EQ(results.at("results").size(), 8u);
  EXPECT_TRUE(results.at("meta").at("use_camera").get<bool>());
  e.weights = "ema";
  EXPECT_ERROR_WITH(evaluate_checkpoint(e, log), "holds no EMA weights");
  // Loss curves.
  const auto pngs = plot_metrics(c.out_dir + "/metrics.jsonl", c.out_dir + "/plots");
  ASSERT_EQ(pngs.size(), 2u);
  EXPECT_TRUE(path_exists(pngs[0]));
}


TEST_F(TrainRunTest, DistillationLossesTrainFromTheShardsAndAreCheckpointed) {
  auto c = config(dir_->path() + "/distill");
  c.epochs = 1;
  c.stop_after = 2;
  LossSpec dense{"bevdistill_dense"};
  LossSpec fit{"fitnet"};
  fit.weight = 0.5;
  fit.params = {{"tap", "neck"}, {"student_tap", "neck"}};
  LossSpec depth{"tig_inner_depth"};
  c.losses = {dense, fit, depth};
  std::ostringstream log;
  const auto r = train_student(c, log);
  EXPECT_EQ(r.steps_done, 2);
  const auto recs = losses_of(c.out_dir);
  ASSERT_EQ(recs.size(), 2u);
  for (const char* k : {"loss.bevdistill_dense", "loss.fitnet", "loss.tig_inner_depth"}) {
    ASSERT_TRUE(recs[0].contains(k)) << recs[0].dump();
    EXPECT_TRUE(std::isfinite(recs[0].at(k).get<double>())) << k;
    EXPECT_GT(recs[0].at(k).get<double>(), 0.0) << k;
  }
  // The total is the detection + depth losses plus the weighted distillation terms.
  const auto& r0 = recs[0];
  EXPECT_NEAR(r0.at("loss").get<double>(),
              r0.at("loss_heatmap").get<double>() * c.student.loss.heatmap_weight +
                  r0.at("loss_bbox").get<double>() * c.student.loss.bbox_weight + r0.at("loss_depth").get<double>() +
                  r0.at("loss.bevdistill_dense").get<double>() + r0.at("loss.fitnet").get<double>() +
                  r0.at("loss.tig_inner_depth").get<double>(),
              1e-4 * r0.at("loss").get<double>());
  EXPECT_NEAR(r0.at("loss.fitnet").get<double>(), 0.5 * r0.at("loss.fitnet.fitnet").get<double>(), 1e-9);
  // Trainable parts (the FitNet regressor, the dense loss's 1x1 adaptor: 32 student -> 4 teacher
  // channels) are saved with the run; the resolved config holds the weights and parameters.
  const auto ck = core::nn::read_checkpoint(c.out_dir + "/checkpoint-latest.ckpt", "student");
  EXPECT_EQ(ck.modules.count("loss.fitnet"), 1u);
  EXPECT_EQ(ck.modules.count("loss.bevdistill_dense"), 1u);
  EXPECT_EQ(ck.modules.count("loss.tig_inner_depth"), 0u);
  const json saved = config::read_file(c.out_dir + "/config.json");
  const auto& l = saved.at("optimisation").at("losses");
  EXPECT_EQ(l.at(0).at("name"), "bevdistill_dense");
  EXPECT_EQ(l.at(0).at("weight"), 1.0);
  EXPECT_EQ(l.at(0).at("loss_weight"), 0.01);
  EXPECT_EQ(l.at(1).at("weight"), 0.5);
}

// Every registered loss alone, two steps on the fixture's shards (schema with class_probs, taps
// neck and head_shared): finite, non-negative terms and no skipped step.
TEST_F(TrainRunTest, EveryRegisteredLossTrainsAloneWithFiniteTerms) {
  for (const auto& e : loss_registry()) {
    auto c = config(dir_->path() + "/each_" + e.name);
    c.epochs = 1;
    c.stop_after = 2;
    c.losses = {LossSpec{e.name}};
    std::ostringstream log;
    const auto r = train_student(c, log);
    EXPECT_EQ(r.steps_done, 2) << e.name;
    EXPECT_EQ(r.bad_steps, 0) << e.name;
    const auto recs = losses_of(c.out_dir);
    ASSERT_EQ(recs.size(), 2u) << e.name;
    for (const auto& rec : recs) {
      const std::string k = "loss." + e.name;
      ASSERT_TRUE(rec.contains(k)) << rec.dump();
      EXPECT_TRUE(std::isfinite(rec.at(k).get<double>())) << e.name;
      EXPECT_GE(rec.at(k).get<double>(), 0.0) << e.name;
    }
  }
}

// BEVDistill's instance weighting: the release's s² (s = the teacher's max class probability) and
// the paper's quality q (the shards' teacher/quality) give different losses on the same first step
// (same student, same batch); the papers' combination trains.
TEST_F(TrainRunTest, BevDistillBoxS2AndQWeightingAndThePapersCombination) {
  auto first_box_loss = [&](const std::string& weighting) {
    auto c = config(dir_->path() + "/box_" + weighting);
    c.epochs = 1;
    c.stop_after = 1;
    LossSpec box{"bevdistill_box"};
    box.params = {{"weighting", weighting}, {"top_k", 64}};
    c.losses = {box};
    std::ostringstream log;
    train_student(c, log);
    return losses_of(c.out_dir).at(0).at("loss.bevdistill_box").get<double>();
  };
  const double s2 = first_box_loss("s2"), q = first_box_loss("q");
  EXPECT_GT(s2, 0.0);
  EXPECT_GT(q, 0.0);
  EXPECT_GT(std::abs(s2 - q), 1e-6 * s2) << "s2 " << s2 << " q " << q;

  auto c = config(dir_->path() + "/bevdistill_all");
  c.epochs = 1;
  c.stop_after = 2;
  c.losses = {LossSpec{"bevdistill_dense"}, LossSpec{"bevdistill_box"}, LossSpec{"bevdistill_infonce"}};
  std::ostringstream log;
  const auto r = train_student(c, log);
  EXPECT_EQ(r.bad_steps, 0);
  const auto ck = core::nn::read_checkpoint(c.out_dir + "/checkpoint-latest.ckpt", "student");
  EXPECT_EQ(ck.modules.count("loss.bevdistill_infonce"), 1u) << "both projection heads are saved";
  EXPECT_EQ(ck.modules.count("loss.bevdistill_box"), 0u) << "nothing trainable";
  auto bad = config(dir_->path() + "/box_bad");
  LossSpec box{"bevdistill_box"};
  box.params = {{"weighting", "iou"}};
  bad.losses = {box};
  EXPECT_ERROR_WITH(train_student(bad, log), "loss bevdistill_box: weighting must be s2", "got 'iou'");
}

TEST_F(TrainRunTest, LossNeedingAFieldTheShardsLackIsRefusedNamingFieldAndPrecomputeOption) {
  auto c = config(dir_->path() + "/missing");
  LossSpec cwd{"cwd"};
  cwd.params = {{"tap", "lss"}, {"student_tap", "lss"}};
  c.losses = {cwd};
  std::ostringstream log;
  EXPECT_ERROR_WITH(train_student(c, log), "loss cwd needs the shard field teacher/features/lss",
                    "they hold the taps: head_shared, neck", "bevkd-precompute run --taps lss");
  cwd.params = {{"tap", "neck"}, {"temperature", 2.0}};
  c.losses = {cwd};
  EXPECT_ERROR_WITH(train_student(c, log), "loss cwd: unknown parameter 'temperature'", "tau");
  cwd.params = {{"tap", "neck"}, {"student_tap", "bev"}};
  c.losses = {cwd};
  EXPECT_ERROR_WITH(train_student(c, log), "loss cwd: the student has no tap 'bev'", "lss, neck, head_shared");
}

// X³KD's X-AT step order through the registry's module, as the trainer drives it: the student
// step (terms backward, the student's optimizer over student_parameters()) accumulates nothing
// into the discriminator and leaves it unchanged; the discriminator step (own_losses backward,
// own_optimizer) changes the discriminator only — neither the student map nor the adaptor.
TEST(X3kdEntry, StudentStepLeavesTheDiscriminatorAndItsStepLeavesTheStudent) {
  torch::manual_seed(1);
  auto sc = student::student_preset("tiny");
  sc.grid = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 1.6);  // 16 x 16
  const BevGrid tg = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 0.8);
  const LossEntry& e = find_loss("x3kd");
  const json params = resolve_params(e, {{"w_hm", 0}, {"w_reg", 0}, {"disc_channels", 8}, {"disc_lr", 1e-2}});
  LossSetup setup{sc, tg, {storage::TapSpec{"neck", 4, storage::DType::kFloat16}}, params, "loss x3kd"};
  auto loss = e.make(setup);
  ASSERT_NE(loss->own_optimizer(), nullptr);

  student::StudentOutput out;
  const auto s_map = torch::randn({2, sc.bev_neck_channels(), 16, 16}, torch::requires_grad(true));
  out.neck = s_map;
  data::Batch batch;
  batch.teacher.resize(2);
  for (auto& t : batch.teacher) t.features["neck"] = torch::randn({4, 32, 32});
  const std::vector<core::nn::TaskTargets> targets;
  const LossInputs in{out, batch, targets, 0};

  auto snapshot = [](const std::vector<torch::Tensor>& ps) {
    std::vector<torch::Tensor> v;
    for (const auto& p : ps) v.push_back(p.detach().clone());
    return v;
  };
  auto same = [](const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!torch::equal(a[i], b[i])) return false;
    return true;
  };
  const auto own = loss->own_parameters();
  const auto student_side = loss->student_parameters();
  ASSERT_FALSE(own.empty());
  ASSERT_FALSE(student_side.empty());  // the 1x1 adaptor
  for (const auto& p : own)
    for (const auto& q : student_side) EXPECT_FALSE(p.is_same(q)) << "a discriminator parameter in the student group";

  // Student step.
  const auto d0 = snapshot(own);
  std::vector<torch::Tensor> sp = student_side;
  sp.push_back(s_map);
  torch::optim::SGD student_opt(sp, torch::optim::SGDOptions(0.1));
  const auto terms = loss->terms(in);
  ASSERT_EQ(terms.count("xat"), 1u);
  ASSERT_EQ(terms.count("xfd"), 1u);
  (terms.at("xat") + terms.at("xfd")).backward();
  for (const auto& p : own) EXPECT_TRUE(!p.grad().defined() || p.grad().abs().sum().item<double>() == 0.0);
  EXPECT_GT(s_map.grad().abs().sum().item<double>(), 0.0);
  student_opt.step();
  EXPECT_TRUE(same(d0, snapshot(own)));

  // Discriminator step.
  student_opt.zero_grad();
  const auto s1 = snapshot(sp);
  std::map<std::string, double> logged;
  const auto own_losses = loss->take_own_losses(logged);
  ASSERT_EQ(own_losses.size(), 1u);
  EXPECT_TRUE(logged.count("x3kd.disc_acc") && logged.at("x3kd.disc_acc") >= 0 && logged.at("x3kd.disc_acc") <= 1);
  loss->own_optimizer()->zero_grad();
  own_losses[0].backward();
  for (const auto& p : sp) EXPECT_TRUE(!p.grad().defined() || p.grad().abs().sum().item<double>() == 0.0);
  loss->own_optimizer()->step();
  EXPECT_FALSE(same(d0, snapshot(own)));
  EXPECT_TRUE(same(s1, snapshot(sp)));
  // Taken once: a second call (e.g. after a skipped step) finds nothing.
  EXPECT_TRUE(loss->take_own_losses(logged).empty());
}

// X³KD (with its discriminator and own Adam) and FD3D (with its head and own AdamW): a run stopped
// and resumed equals the uninterrupted one, the losses' own modules and optimizer states included.
TEST_F(TrainRunTest, X3kdAndFd3dResumeExactlyWithTheirOwnOptimizers) {
  torch::set_num_threads(1);
  auto make = [&](const std::string& name) {
    auto c = config(dir_->path() + "/" + name);
    c.epochs = 1;
    LossSpec x{"x3kd"};
    x.params = {{"disc_channels", 8}};
    LossSpec f{"fd3d"};
    f.params = {{"num_queries", 8}, {"embed_dims", 16}, {"num_layers", 2}, {"heads", 2}, {"points", 2}};
    c.losses = {x, f};
    return c;
  };
  std::ostringstream log;
  const auto full = make("own_full");
  ASSERT_TRUE(train_student(full, log).finished);
  auto part = make("own_part");
  part.stop_after = 2;
  ASSERT_EQ(train_student(part, log).steps_done, 2);
  part.stop_after = 0;
  ASSERT_TRUE(train_student(part, log).finished);
  const auto la = losses_of(full.out_dir), lb = losses_of(part.out_dir);
  ASSERT_EQ(la.size(), lb.size());
  for (std::size_t i = 0; i < la.size(); ++i)
    for (const char* k : {"loss", "loss.x3kd.xat", "loss.x3kd.disc", "x3kd.disc_acc", "loss.fd3d.smgd",
                          "loss.fd3d.head_cls", "fd3d.focal_per_sample"}) {
      ASSERT_TRUE(la[i].contains(k)) << la[i].dump();
      EXPECT_EQ(la[i].at(k).get<double>(), lb[i].at(k).get<double>()) << "step " << la[i].at("step") << " " << k;
    }
  const auto ca = core::nn::read_checkpoint(full.out_dir + "/student.ckpt", "student");
  const auto cb = core::nn::read_checkpoint(part.out_dir + "/student.ckpt", "student");
  for (const char* m : {"model", "loss.x3kd", "loss.fd3d"}) {
    const auto& ma = ca.module(m, "a");
    const auto& mb = cb.module(m, "b");
    ASSERT_EQ(ma.size(), mb.size()) << m;
    for (std::size_t i = 0; i < ma.size(); ++i) EXPECT_TRUE(torch::equal(ma[i].second, mb[i].second)) << m << " " << ma[i].first;
  }
  EXPECT_EQ(ca.optimizers.count("loss.x3kd"), 1u);
  EXPECT_EQ(ca.optimizers.count("loss.fd3d"), 1u);
}

// The query-based student head: it trains with the Hungarian set loss (every layer), evaluates
// into the same results JSON (top queries, NMS-free), takes BEVDistill's instance losses (on all
// its decoder layers; this test checks that they train, not the per-layer count), and losses that
// need the CenterHead are refused naming why.
TEST_F(TrainRunTest, QueryHeadStudentTrainsEvaluatesAndTakesBevDistillInstanceLosses) {
  auto c = config(dir_->path() + "/query");
  c.epochs = 1;  // 4 steps, then the evaluation
  c.val_split = "train";
  c.student.head_type = "query";
  c.student.query_head.num_queries = 12;
  c.student.query_head.embed_dims = 16;
  c.student.query_head.ffn_dims = 16;
  c.student.query_head.num_layers = 2;
  c.student.query_head.heads = 2;
  c.student.query_head.points = 2;
  c.student.query_max_det = 10;
  LossSpec box{"bevdistill_box"};
  box.params = {{"top_k", 12}};
  c.losses = {box, LossSpec{"bevdistill_infonce"}, LossSpec{"fitnet"}};
  std::ostringstream log;
  const auto r = train_student(c, log);
  EXPECT_EQ(r.steps_done, 4);
  EXPECT_EQ(r.bad_steps, 0);
  const auto recs = losses_of(c.out_dir);
  ASSERT_EQ(recs.size(), 4u);
  for (const char* k : {"loss_cls", "loss_bbox", "loss_depth", "loss.bevdistill_box", "loss.bevdistill_infonce"}) {
    ASSERT_TRUE(recs[0].contains(k)) << recs[0].dump();
    EXPECT_TRUE(std::isfinite(recs[0].at(k).get<double>())) << k;
  }
  EXPECT_FALSE(recs[0].contains("loss_heatmap"));
  // Evaluation decoded at most query_max_det boxes per sample into the results JSON.
  ASSERT_TRUE(r.map.has_value());
  const json results = config::read_file(std::filesystem::path(r.metrics_json).parent_path().string() + "/results_nusc.json");
  ASSERT_EQ(results.at("results").size(), 8u);
  for (const auto& [token, boxes] : results.at("results").items()) EXPECT_LE(boxes.size(), 10u) << token;
  const auto ck = core::nn::read_checkpoint(c.out_dir + "/student.ckpt", "student");
  bool has_query = false;
  for (const auto& [name, t] : ck.module("model", "student.ckpt")) has_query = has_query || name.rfind("query_head.", 0) == 0;
  EXPECT_TRUE(has_query);

  // The CenterHead's shared-conv tap and X-OD are refused by name.
  c.stop_after = 1;
  auto dense = c;
  dense.out_dir = dir_->path() + "/query_dense";
  dense.losses = {LossSpec{"bevdistill_dense"}};
  EXPECT_ERROR_WITH(train_student(dense, log), "query head has no 'head_shared' tap");
  auto xod = c;
  xod.out_dir = dir_->path() + "/query_xod";
  xod.losses = {LossSpec{"x3kd"}};
  EXPECT_ERROR_WITH(train_student(xod, log), "X-OD distils the CenterHead");
}

// `bevkd-train fd3d-head`: the head alone on the fixture's teacher features, then its report (the
// head's and the stored teacher boxes' metrics on the same samples, focal-query counts); a rerun
// with more steps resumes from the checkpoint.
TEST_F(TrainRunTest, Fd3dHeadRunReportsAndResumes) {
  Fd3dHeadRunConfig c;
  c.shards = data_->manifest_path;
  c.dataroot = data_->dataroot;
  c.train_split = c.val_split = "train";
  c.out_dir = dir_->path() + "/fd3d_head";
  c.steps = 3;
  c.batch_size = 2;
  c.threads = 1;
  c.num_queries = 8;
  c.embed_dims = 16;
  c.num_layers = 2;
  c.heads = 2;
  c.points = 2;
  c.quiet = true;
  std::ostringstream log;
  const auto a = run_fd3d_head(c, log);
  EXPECT_EQ(a.steps_done, 3);
  EXPECT_EQ(a.samples, 8);
  const json report = config::read_file(a.report);
  EXPECT_EQ(report.at("samples"), 8);
  EXPECT_GE(report.at("teacher").at("mAP").get<double>(), 0.0);
  EXPECT_LE(report.at("head").at("mAP").get<double>(), 1.0);
  EXPECT_EQ(report.at("gt_boxes").get<int64_t>() > 0, true);
  EXPECT_LE(report.at("gt_covered_by_focal").get<int64_t>(), report.at("gt_boxes").get<int64_t>());
  c.steps = 4;
  c.quiet = false;
  const auto b = run_fd3d_head(c, log);
  EXPECT_EQ(b.steps_done, 4);
  EXPECT_NE(log.str().find("resuming"), std::string::npos) << log.str();
  c.num_queries = 9;  // another head cannot resume from it
  EXPECT_ERROR_WITH(run_fd3d_head(c, log), "another configuration");
}

}  // namespace
}  // namespace bevkd::train::trainer
