// The outputs of an evaluation: the printed table, metrics_summary.json / metrics_details.json
// laid out like the devkit's (read back with Python's json, which is what consumers use), and
// the PR-curve PNGs.
#include "core/eval/report.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "base/canvas.h"
#include "base/error.h"
#include "base/fs.h"
#include "eval_fixtures.h"

namespace bevkd::core::eval {
namespace {

using namespace evaltest;  // NOLINT

EvalResult small_eval() {
  // One car (TP 0.3 m off, ranked below an FP) and one cone (exact).
  GtBuilder b;
  b.sample(token(1), {gt_box(L("car"), 10, 0), gt_box(L("traffic_cone"), 3, 3)});
  EvalBoxes p;
  p.add_sample(token(1), {pred_of(gt_box(L("car"), 30, 0), 0.95), pred_of(gt_box(L("car"), 10.3, 0), 0.9),
                          pred_of(gt_box(L("traffic_cone"), 3, 3), 0.8)});
  ResultsMeta meta;
  meta.use_camera = true;
  return evaluate(b.gt, p, DetectionConfig::cvpr_2019(), meta);
}

TEST(EvalReport, SummaryTableLooksLikeTheDevkits) {
  const EvalResult r = small_eval();
  const std::string s = format_summary(r.metrics);
  // mAP = (0.2 + 1) / 10.
  EXPECT_NE(s.find("mAP: 0.1200\n"), std::string::npos) << s;
  EXPECT_NE(s.find("NDS: "), std::string::npos) << s;
  EXPECT_NE(s.find("Per-class results:\nObject Class          AP      AP@0.5  AP@1.0  AP@2.0  AP@4.0  ATE     ASE     AOE     AVE     AAE\n"),
            std::string::npos) << s;
  EXPECT_NE(s.find("car                   0.200   0.200   0.200   0.200   0.200   0.300   0.000   0.000   0.000   0.000\n"),
            std::string::npos) << s;
  EXPECT_NE(s.find("traffic_cone          1.000   1.000   1.000   1.000   1.000   0.000   0.000   nan     nan     nan\n"),
            std::string::npos) << s;
}

TEST(EvalReport, JsonFilesReadBackWithPython) {
  const EvalResult r = small_eval();
  const std::string dir = std::string(BEVKD_BINARY_DIR) + "/tests/core/eval_report_out";
  write_eval_outputs(dir, r, true);
  for (const char* f : {"metrics_summary.json", "metrics_details.json", "plots/car_pr.png", "plots/barrier_pr.png",
                        "plots/dist_pr_0.5.png", "plots/dist_pr_4.0.png"})
    EXPECT_TRUE(path_exists(dir + "/" + f)) << f;
  const Canvas png = load_png(dir + "/plots/car_pr.png");
  EXPECT_EQ(png.width(), 640);

  const std::string py = BEVKD_PYTHON;
  if (std::system((py + " -c 'import json' > /dev/null 2>&1").c_str()) != 0) GTEST_SKIP() << "no " << py;
  // Keys in the devkit's order, values as computed, NaN where the devkit writes NaN.
  const std::string script = dir + "/check.py";
  write_file_atomic(script, R"(import json, math, sys
d = sys.argv[1]
s = json.load(open(d + '/metrics_summary.json'))
assert list(s) == ['label_aps', 'mean_dist_aps', 'mean_ap', 'label_tp_errors', 'tp_errors', 'tp_scores',
                   'nd_score', 'eval_time', 'cfg', 'meta'], list(s)
assert list(s['label_aps']) == ['car', 'truck', 'bus', 'trailer', 'construction_vehicle', 'pedestrian',
                                'motorcycle', 'bicycle', 'traffic_cone', 'barrier']
assert list(s['label_aps']['car']) == ['0.5', '1.0', '2.0', '4.0']
assert abs(s['label_aps']['car']['0.5'] - 0.2) < 1e-12
assert abs(s['mean_ap'] - 0.12) < 1e-12
assert list(s['label_tp_errors']['car']) == ['trans_err', 'scale_err', 'orient_err', 'vel_err', 'attr_err']
assert math.isnan(s['label_tp_errors']['traffic_cone']['orient_err'])
assert math.isnan(s['label_tp_errors']['barrier']['vel_err'])
assert s['label_tp_errors']['barrier']['trans_err'] == 1.0
assert s['cfg']['class_range']['car'] == 50 and s['cfg']['dist_ths'] == [0.5, 1.0, 2.0, 4.0]
assert s['cfg']['mean_ap_weight'] == 5 and s['cfg']['max_boxes_per_sample'] == 500
assert s['meta']['use_camera'] is True and s['meta']['use_lidar'] is False
m = json.load(open(d + '/metrics_details.json'))
assert len(m) == 40 and list(m)[0] == 'car:0.5' and list(m)[-1] == 'barrier:4.0', list(m)[:2]
assert list(m['car:2.0']) == ['recall', 'precision', 'confidence', 'trans_err', 'vel_err', 'scale_err',
                              'orient_err', 'attr_err']
assert all(len(v) == 101 for v in m['car:2.0'].values())
assert abs(m['car:2.0']['precision'][50] - 0.25) < 1e-12
print('ok')
)");
  EXPECT_EQ(std::system((py + " " + script + " " + dir).c_str()), 0);
}

}  // namespace
}  // namespace bevkd::core::eval
