// fit-teacher on a tiny bevkd-synth dataset: the loss goes down, a stopped-and-resumed run ends
// with exactly the parameters of an uninterrupted one, a resume with another schedule is refused,
// the final evaluation writes the official metrics, and the CLI runs end to end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "base/config.h"
#include "core/nn/checkpoint.h"
#include "core/nn/metrics_log.h"
#include "precompute/fit/fit_teacher.h"
#include "precompute/teacher/pointpillars.h"
#include "tests/precompute/precompute_fixtures.h"
#include "tests/support/expect_error.h"
#include "tests/support/run.h"

namespace bevkd::precompute {
namespace {

namespace fs = std::filesystem;

const fs::path& test_root() {
  static const fs::path root = testing::temp_dir("fit_teacher", "runs");
  return root;
}

// Three small scenes of four samples: scene-0061 and scene-0553 fall in mini_train, scene-0103
// in mini_val.
const std::string& dataset() { return testing::tiny_synth_dataset(4); }

FitTeacherConfig base_config(const std::string& out) {
  FitTeacherConfig c;
  c.dataroot = dataset();
  c.out_dir = (test_root() / out).string();
  c.num_sweeps = 2;
  c.epochs = 2;
  c.batch_size = 2;
  c.schedule.lr = 3e-3;
  c.num_workers = 2;
  c.log_every = 1;
  c.val_split = "";
  c.quiet = true;
  fs::remove_all(c.out_dir);
  return c;
}

std::vector<nlohmann::json> read_metrics(const std::string& out_dir) {
  return core::nn::MetricsLog::read(out_dir + "/metrics.jsonl");
}

// Step, first and second moments of every parameter, in parameter order.
std::vector<torch::Tensor> adam_state(const core::nn::Checkpoint& ck) {
  PointPillarsCenterPoint model(teacher_preset("tiny"));
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  core::nn::optimizer_from_bytes(opt, ck.optimizers.at("adamw"), "test");
  std::vector<torch::Tensor> out;
  for (const auto& p : model->parameters()) {
    const auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*opt.state().at(key));
    out.push_back(torch::tensor(s.step()));
    out.push_back(s.exp_avg());
    out.push_back(s.exp_avg_sq());
  }
  return out;
}

TEST(FitTeacher, StopAndResumeEqualsUninterrupted) {
  auto a = base_config("uninterrupted");
  const auto ra = fit_teacher(a);
  ASSERT_TRUE(ra.finished);
  EXPECT_EQ(ra.steps_done, ra.total_steps);

  auto b = base_config("resumed");
  b.stop_after = 3;  // a kill after step 3 (the last checkpoint is at step 3)
  const auto rb1 = fit_teacher(b);
  EXPECT_FALSE(rb1.finished);
  EXPECT_EQ(rb1.steps_done, 3);
  b.stop_after = 0;
  const auto rb2 = fit_teacher(b);
  ASSERT_TRUE(rb2.finished);

  const auto ca = core::nn::read_checkpoint(ra.checkpoint), cb = core::nn::read_checkpoint(rb2.checkpoint);
  const auto& ma_ = ca.module("model", ra.checkpoint);
  const auto& mb_ = cb.module("model", rb2.checkpoint);
  ASSERT_EQ(ma_.size(), mb_.size());
  for (size_t i = 0; i < ma_.size(); ++i) {
    EXPECT_EQ(ma_[i].first, mb_[i].first);
    EXPECT_TRUE(torch::equal(ma_[i].second, mb_[i].second)) << ma_[i].first;
  }
  // The AdamW states agree too (the archives' bytes differ: LibTorch keys them by tensor address).
  const auto sa = adam_state(ca), sb = adam_state(cb);
  ASSERT_EQ(sa.size(), sb.size());
  ASSERT_FALSE(sa.empty());
  for (size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(torch::equal(sa[i], sb[i])) << "optimizer state " << i;
  // The metrics log of the resumed run equals the uninterrupted one step for step.
  const auto ma = read_metrics(a.out_dir), mb = read_metrics(b.out_dir);
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i]["step"], mb[i]["step"]);
    EXPECT_EQ(ma[i]["loss"].get<double>(), mb[i]["loss"].get<double>()) << "step " << ma[i]["step"];
  }
}

TEST(FitTeacher, ResumeWithAnotherScheduleIsRefused) {
  auto c = base_config("refused");
  c.stop_after = 1;
  fit_teacher(c);
  c.schedule.lr = 1e-3;
  EXPECT_ERROR_WITH(fit_teacher(c), "cannot resume from " + c.out_dir +
                                        "/checkpoint-latest.ckpt: it was made with another configuration, first "
                                        "difference at optimisation.schedule.lr (the checkpoint 0.003, this run 0.001)");
}

TEST(FitTeacher, LossDecreasesAndEvaluationWritesMetrics) {
  auto c = base_config("short_fit");
  c.epochs = 4;
  c.val_split = "mini_val";
  const auto r = fit_teacher(c);
  ASSERT_TRUE(r.finished);
  const auto m = read_metrics(c.out_dir);
  ASSERT_GE(m.size(), 8u);
  const double first = (m[0]["loss"].get<double>() + m[1]["loss"].get<double>()) / 2;
  const double last = (m[m.size() - 3]["loss"].get<double>() + m[m.size() - 2]["loss"].get<double>()) / 2;
  EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
  // The last record is the evaluation.
  EXPECT_EQ(m.back()["event"], "eval");
  ASSERT_TRUE(r.map.has_value() && r.nds.has_value());
  EXPECT_GE(*r.map, 0.0);
  EXPECT_LE(*r.map, 1.0);
  EXPECT_TRUE(path_exists(r.metrics_json));
  // The devkit's summary holds NaN (traffic-cone / barrier overrides), which strict JSON lacks.
  auto text = read_file(r.metrics_json);
  for (size_t p = text.find("NaN"); p != std::string::npos; p = text.find("NaN", p)) text.replace(p, 3, "null");
  const auto summary = nlohmann::json::parse(text);
  EXPECT_NEAR(summary["mean_ap"].get<double>(), *r.map, 1e-12);
  EXPECT_NEAR(summary["nd_score"].get<double>(), *r.nds, 1e-12);
  EXPECT_TRUE(path_exists(c.out_dir + "/eval/mini_val/results_nusc.json"));
}

TEST(FitTeacher, CliRunsAndReportsMetrics) {
  const auto out = (test_root() / "cli").string();
  fs::remove_all(out);
  const std::string cmd = bevkd::testing::binary("bevkd-precompute") + " fit-teacher --dataroot " +
                          dataset() + " --out " + out +
                          " --epochs 1 --batch-size 2 --sweeps 2 --log-every 2 > " + out + ".log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(out + ".log");
  const auto log = read_file(out + ".log");
  EXPECT_NE(log.find("fit-teacher  step 2/"), std::string::npos) << log;
  EXPECT_NE(log.find("mini_val mAP "), std::string::npos) << log;
  EXPECT_TRUE(path_exists(out + "/teacher.ckpt"));
  EXPECT_TRUE(path_exists(out + "/config.json"));
  // eval-teacher scores the checkpoint the same way fit-teacher's final evaluation did.
  const std::string ev = bevkd::testing::binary("bevkd-precompute") + " eval-teacher --dataroot " +
                         dataset() + " --checkpoint " + out + "/teacher.ckpt --sweeps 2 --out " + out +
                         "/eval2 > " + out + ".eval.log 2>&1";
  ASSERT_EQ(std::system(ev.c_str()), 0) << read_file(out + ".eval.log");
  const auto fit_summary = read_file(out + "/eval/mini_val/metrics_summary.json");
  const auto ev_log = read_file(out + ".eval.log");
  EXPECT_NE(ev_log.find("eval-teacher: mini_val mAP "), std::string::npos) << ev_log;
  const auto mean_ap = [](const std::string& text) { return text.substr(text.find("\"mean_ap\""), 40); };
  EXPECT_EQ(mean_ap(read_file(out + "/eval2/metrics_summary.json")), mean_ap(fit_summary));
  const std::string both = bevkd::testing::binary("bevkd-precompute") + " eval-teacher --dataroot " +
                           dataset() + " --checkpoint a.ckpt --teacher b.pt --out " + out + "/eval3 > " + out +
                           ".both.log 2>&1";
  EXPECT_NE(std::system(both.c_str()), 0);
  EXPECT_NE(read_file(out + ".both.log")
                .find("error: teacher: give exactly one of --checkpoint (built-in) and --teacher (TorchScript), got both"),
            std::string::npos)
      << read_file(out + ".both.log");
  // A bad option is refused with a message.
  const std::string bad = bevkd::testing::binary("bevkd-precompute") + " fit-teacher --dataroot " +
                          dataset() + " --out " + out + " --schedule linear > " + out + ".bad.log 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_NE(read_file(out + ".bad.log")
                .find("error: fit-teacher schedule: schedule kind is 'linear', expected onecycle, cosine or constant"),
            std::string::npos)
      << read_file(out + ".bad.log");
  // The saved resolved configuration reproduces the run: passed back with --config (a new --out),
  // the resolved configuration written there is the same but for the output directory.
  const std::string again = bevkd::testing::binary("bevkd-precompute") + " fit-teacher --config " + out +
                            "/config.json --out " + out + "_again --val-split '' > " + out + ".again.log 2>&1";
  ASSERT_EQ(std::system(again.c_str()), 0) << read_file(out + ".again.log");
  auto first_cfg = config::parse(read_file(out + "/config.json"), "first");
  auto second_cfg = config::parse(read_file(out + "_again/config.json"), "second");
  EXPECT_EQ(config::first_difference(first_cfg, second_cfg), "evaluation.val_split (stored \"mini_val\", given \"\")");
  first_cfg["runtime"].erase("out_dir");
  second_cfg["runtime"].erase("out_dir");
  first_cfg.erase("evaluation");
  second_cfg.erase("evaluation");
  EXPECT_EQ(first_cfg, second_cfg);
  // Both trained the same model: identical weights.
  const auto w1 = core::nn::read_checkpoint(out + "/teacher.ckpt").module("model", "1");
  const auto w2 = core::nn::read_checkpoint(out + "_again/teacher.ckpt").module("model", "2");
  ASSERT_EQ(w1.size(), w2.size());
  for (size_t i = 0; i < w1.size(); ++i) EXPECT_TRUE(torch::equal(w1[i].second, w2[i].second)) << w1[i].first;
}

}  // namespace
}  // namespace bevkd::precompute
