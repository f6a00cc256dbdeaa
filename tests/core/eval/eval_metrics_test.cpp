// The evaluation on hand-made cases whose metrics are worked out in the comments
// (spec/nuscenes.md §(d)). Notation: r_k = k/100 (numpy.linspace), P_k / C_k / E_k the
// resampled precision / confidence / TP error, AP = sum_{k=11..100} max(P_k - 0.1, 0) / 90 / 0.9.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "base/math.h"
#include "core/eval/accumulate.h"
#include "core/eval/evaluate.h"
#include "core/eval/filter.h"
#include "eval_fixtures.h"

namespace bevkd::core::eval {
namespace {

using namespace evaltest;  // NOLINT
constexpr double kTol = 1e-12;
const DetectionConfig kCfg = DetectionConfig::cvpr_2019();

EvalResult run(const GroundTruth& gt, const EvalBoxes& preds) {
  EvalOptions o;
  o.num_threads = 2;
  return evaluate(gt, preds, kCfg, {}, o);
}

// One sample "s1" with the given GT and predictions.
EvalResult run_one(std::vector<EvalBox> gt, std::vector<EvalBox> preds, std::vector<core::NuscBox> racks = {}) {
  GtBuilder b;
  b.sample(token(1), std::move(gt), {0, 0, 0}, std::move(racks));
  EvalBoxes p;
  p.add_sample(token(1), std::move(preds));
  return run(b.gt, p);
}

// Eight classes present (no trailer, no construction vehicle), spread over three samples.
GtBuilder eight_class_gt() {
  GtBuilder b;
  b.sample(token(1), {gt_box(L("car"), 10, 0), gt_box(L("car"), -20, 5, 1.0), gt_box(L("truck"), 25, -10),
                      gt_box(L("pedestrian"), 5, 5)});
  b.sample(token(2), {gt_box(L("bus"), 30, 0, -2.0), gt_box(L("motorcycle"), 8, -3), gt_box(L("bicycle"), -6, 2),
                      gt_box(L("traffic_cone"), 3, 3)});
  b.sample(token(3), {gt_box(L("barrier"), 12, -4, 0.5), gt_box(L("barrier"), 12, -8, 0.5), gt_box(L("car"), 0, 15)});
  return b;
}

TEST(EvalMetrics, PerfectPredictionsCapMapByAbsentClasses) {
  GtBuilder b = eight_class_gt();
  EvalBoxes preds;
  double score = 0.95;
  for (std::size_t s = 0; s < b.gt.boxes.num_samples(); ++s) {
    std::vector<EvalBox> p;
    for (const EvalBox& g : b.gt.boxes.boxes(s)) p.push_back(pred_of(g, score -= 0.05));
    preds.add_sample(b.gt.boxes.token(s), p);
  }
  const EvalResult r = run(b.gt, preds);
  const DetectionMetrics& m = r.metrics;
  // Every match is exact: precision 1 at every recall (left of the first recall numpy.interp
  // takes fp[0] = 1), so AP = 0.9 / 0.9 = 1 at all four thresholds, and every TP error is 0.
  for (const char* name : {"car", "truck", "bus", "pedestrian", "motorcycle", "bicycle", "traffic_cone", "barrier"}) {
    for (int t = 0; t < 4; ++t) EXPECT_NEAR(m.ap(L(name), t), 1.0, kTol) << name;
    EXPECT_NEAR(m.tp_error(L(name), TpMetric::kTrans), 0.0, kTol) << name;
    EXPECT_NEAR(m.tp_error(L(name), TpMetric::kScale), 0.0, kTol) << name;
  }
  // Absent classes: no-prediction record, AP 0 and TP errors 1.
  for (const char* name : {"trailer", "construction_vehicle"}) {
    EXPECT_EQ(m.mean_dist_ap(L(name)), 0.0);
    for (int k = 0; k < kNumTpMetrics; ++k) EXPECT_EQ(m.tp_error(L(name), static_cast<TpMetric>(k)), 1.0);
  }
  // mAP = 8 / 10. mATE = mASE = nanmean(8 zeros, 2 ones) = 0.2; mAOE = 2/9 (the cone's NaN
  // is skipped); mAVE = mAAE = 2/8 (cone and barrier NaN).
  EXPECT_NEAR(m.mean_ap, 0.8, kTol);
  EXPECT_NEAR(m.tp_errors[0], 0.2, kTol);
  EXPECT_NEAR(m.tp_errors[1], 0.2, kTol);
  EXPECT_NEAR(m.tp_errors[2], 2.0 / 9, kTol);
  EXPECT_NEAR(m.tp_errors[3], 0.25, kTol);
  EXPECT_NEAR(m.tp_errors[4], 0.25, kTol);
  // NDS = (5 * 0.8 + 0.8 + 0.8 + 7/9 + 0.75 + 0.75) / 10.
  EXPECT_NEAR(m.nd_score, (4.0 + 3.1 + 7.0 / 9) / 10, kTol);
  EXPECT_EQ(r.num_samples, 3u);
  EXPECT_EQ(r.gt_filter.after_bike_racks, 11u);
}

TEST(EvalMetrics, NoPredictionsAtAllGiveZeroNotACrash) {
  GtBuilder b = eight_class_gt();
  EvalBoxes preds;
  for (const std::string& t : b.gt.boxes.tokens()) preds.add_sample(t);  // every list empty
  const DetectionMetrics m = run(b.gt, preds).metrics;
  for (int label = 0; label < kNumClasses; ++label) {
    for (int t = 0; t < 4; ++t) EXPECT_EQ(m.ap(label, t), 0.0);
    for (int k = 0; k < kNumTpMetrics; ++k) {
      const double e = m.tp_error(label, static_cast<TpMetric>(k));
      const bool overridden = (label == L("traffic_cone") && k >= 2) || (label == L("barrier") && k >= 3);
      if (overridden) EXPECT_TRUE(std::isnan(e)) << label << " " << k;
      else EXPECT_EQ(e, 1.0) << label << " " << k;
    }
  }
  EXPECT_EQ(m.mean_ap, 0.0);
  for (int k = 0; k < kNumTpMetrics; ++k) {
    EXPECT_EQ(m.tp_errors[static_cast<std::size_t>(k)], 1.0);
    EXPECT_EQ(m.tp_scores[static_cast<std::size_t>(k)], 0.0);
  }
  EXPECT_EQ(m.nd_score, 0.0);
}

TEST(EvalMetrics, FalsePositiveRankedAboveTheTruePositive) {
  // One GT car; an FP (score 0.95, 20 m away) above a TP 0.3 m off (score 0.9).
  // tp = [0, 1], fp = [1, 1]: prec = [0, 0.5], rec = [0, 1] -> P_k = 0.5 r_k.
  // AP = sum_{k=21..100} (0.005 k - 0.1) / 90 / 0.9 = (24.2 - 8) / 81 = 0.2 at every threshold.
  // The one match has trans_err 0.3, so E_k = 0.3 wherever C_k = 0.95 - 0.05 r_k >= 0.9.
  EvalBox tp = pred_of(gt_box(L("car"), 10.3, 0), 0.9);
  const EvalResult r = run_one({gt_box(L("car"), 10, 0)}, {pred_of(gt_box(L("car"), 30, 0), 0.95), tp});
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(r.metrics.ap(L("car"), t), 0.2, kTol);
  EXPECT_NEAR(r.metrics.tp_error(L("car"), TpMetric::kTrans), 0.3, kTol);
  EXPECT_NEAR(r.metrics.tp_error(L("car"), TpMetric::kScale), 0.0, kTol);
  const MetricData& md = r.details[0][0];
  EXPECT_NEAR(md.precision[50], 0.25, kTol);
  EXPECT_NEAR(md.confidence[100], 0.9, kTol);
  // mAP = 0.2 / 10.
  EXPECT_NEAR(r.metrics.mean_ap, 0.02, kTol);
}

TEST(EvalMetrics, TrailingFalsePositiveLowersTheLastRecallBin) {
  // TP (0.9) then FP (0.8): rec = [1, 1], prec = [1, 0.5]. numpy.interp at r = 1 takes the LAST
  // point with xp == 1, so P_100 = 0.5 and P_k = 1 below (left = fp[0]):
  // AP = (89 * 0.9 + 0.4) / 90 / 0.9 = 80.5 / 81.
  const EvalResult r = run_one({gt_box(L("car"), 10, 0)},
                               {pred_of(gt_box(L("car"), 10, 0), 0.9), pred_of(gt_box(L("car"), 30, 0), 0.8)});
  EXPECT_NEAR(r.metrics.ap(L("car"), 0), 80.5 / 81, kTol);
  EXPECT_EQ(r.details[0][0].precision[100], 0.5);
  EXPECT_EQ(r.details[0][0].precision[99], 1.0);
}

TEST(EvalMetrics, TiedScoresMatchTheLaterBoxFirst) {
  // Two predictions with the same score on one GT car: A 0.3 m off, B 0.1 m off. The devkit
  // sorts (score, index) ascending and reverses, so the box listed later is matched first.
  const EvalBox g = gt_box(L("car"), 10, 0);
  const EvalBox a = pred_of(gt_box(L("car"), 10.3, 0), 0.5), b = pred_of(gt_box(L("car"), 10.1, 0), 0.5);
  // Order (A, B): B matches (trans 0.1), A is an FP -> AP 80.5/81 and mATE 0.1.
  const EvalResult ab = run_one({g}, {a, b});
  EXPECT_NEAR(ab.metrics.tp_error(L("car"), TpMetric::kTrans), 0.1, kTol);
  EXPECT_NEAR(ab.metrics.ap(L("car"), 0), 80.5 / 81, kTol);
  // Order (B, A): A matches -> trans 0.3.
  const EvalResult ba = run_one({g}, {b, a});
  EXPECT_NEAR(ba.metrics.tp_error(L("car"), TpMetric::kTrans), 0.3, kTol);
}

TEST(EvalMetrics, TiedScoresAcrossSamplesFollowTheResultsOrder) {
  // Two samples, one GT car each, one prediction each with the same score 0.5: trans 0.1 in
  // s1, 0.3 in s2. Both are TPs; the match order is "later first", so with predictions listed
  // (s1, s2) the s2 match comes first: cummean = [0.3, 0.2]. All scores equal, so C_k = 0.5
  // and E_k = interp(0.5, [0.5, 0.5], [0.2, 0.3]) = 0.3 (the last xp equal to x): the first
  // match's cumulative mean. Listed (s2, s1) it is 0.1. A custom split iterates the split's
  // order instead, whatever the results order.
  auto build = [](SplitKind kind, bool s1_first) {
    GtBuilder b(kind);
    b.sample(token(1), {gt_box(L("car"), 10, 0)}).sample(token(2), {gt_box(L("car"), 10, 0)});
    EvalBoxes p;
    const EvalBox p1 = pred_of(gt_box(L("car"), 10.1, 0), 0.5), p2 = pred_of(gt_box(L("car"), 10.3, 0), 0.5);
    if (s1_first) p.add_sample(token(1), {p1}), p.add_sample(token(2), {p2});
    else p.add_sample(token(2), {p2}), p.add_sample(token(1), {p1});
    return run(b.gt, p).metrics.tp_error(L("car"), TpMetric::kTrans);
  };
  EXPECT_NEAR(build(SplitKind::kPredefined, true), 0.3, kTol);
  EXPECT_NEAR(build(SplitKind::kPredefined, false), 0.1, kTol);
  EXPECT_NEAR(build(SplitKind::kCustom, true), 0.3, kTol);
  EXPECT_NEAR(build(SplitKind::kCustom, false), 0.3, kTol);
}

TEST(EvalMetrics, BarrierOrientationIsModuloPi) {
  // A barrier and a car, each predicted with the heading flipped by pi: the barrier's
  // orientation error is 0 (period pi), the car's pi.
  const EvalResult r = run_one({gt_box(L("barrier"), 5, 0, 0.0), gt_box(L("car"), 10, 5, 0.0)},
                               {pred_of(gt_box(L("barrier"), 5, 0, kPi), 0.9), pred_of(gt_box(L("car"), 10, 5, kPi), 0.9)});
  EXPECT_NEAR(r.metrics.tp_error(L("barrier"), TpMetric::kOrient), 0.0, 1e-9);
  EXPECT_NEAR(r.metrics.tp_error(L("car"), TpMetric::kOrient), kPi, 1e-9);
  // Barriers have no velocity or attribute error.
  EXPECT_TRUE(std::isnan(r.metrics.tp_error(L("barrier"), TpMetric::kVel)));
  EXPECT_TRUE(std::isnan(r.metrics.tp_error(L("barrier"), TpMetric::kAttr)));
  // yaw_diff directly: 3/4 pi apart is pi/4 modulo pi, 3/4 pi modulo 2 pi.
  const EvalBox g = box(L("barrier"), 0, 0, 0.0), p = box(L("barrier"), 0, 0, 0.75 * kPi);
  EXPECT_NEAR(yaw_diff(g, p, kPi), 0.25 * kPi, 1e-12);
  EXPECT_NEAR(yaw_diff(g, p, 2 * kPi), 0.75 * kPi, 1e-12);
  EXPECT_NEAR(angle_diff(-3.0, 3.0, 2 * kPi), 2 * kPi - 6.0, 1e-12);  // across the +-pi seam
}

TEST(EvalMetrics, TrafficConeHasNoOrientationVelocityOrAttribute) {
  // A cone predicted at the right place with a wrong heading and velocity: orientation,
  // velocity and attribute errors are NaN by the devkit's override, whatever the data.
  EvalBox p = pred_of(gt_box(L("traffic_cone"), 4, 4, 0.0), 0.7);
  p.rotation = {std::cos(0.5), 0, 0, std::sin(0.5)};
  p.velocity = {3, 3};
  const EvalResult r = run_one({gt_box(L("traffic_cone"), 4, 4)}, {p});
  EXPECT_NEAR(r.metrics.tp_error(L("traffic_cone"), TpMetric::kTrans), 0.0, kTol);
  EXPECT_NEAR(r.metrics.tp_error(L("traffic_cone"), TpMetric::kScale), 0.0, kTol);
  for (TpMetric m : {TpMetric::kOrient, TpMetric::kVel, TpMetric::kAttr})
    EXPECT_TRUE(std::isnan(r.metrics.tp_error(L("traffic_cone"), m)));
  EXPECT_NEAR(r.metrics.mean_dist_ap(L("traffic_cone")), 1.0, kTol);
}

TEST(EvalMetrics, GtWithoutPointsIsNotAGroundTruth) {
  // GT car B has num_lidar_pts + num_radar_pts = 0 and is filtered out, so the exact
  // prediction on it (score 0.8, ranked after the TP on A) is a false positive: AP = 80.5/81.
  const EvalBox a = gt_box(L("car"), 10, 0), b = gt_box(L("car"), 20, 0, 0.0, /*num_pts=*/0);
  const EvalResult r = run_one({a, b}, {pred_of(a, 0.9), pred_of(b, 0.8)});
  EXPECT_NEAR(r.metrics.ap(L("car"), 0), 80.5 / 81, kTol);
  EXPECT_EQ(r.gt_filter.after_range, 2u);
  EXPECT_EQ(r.gt_filter.after_points, 1u);
  // A prediction that itself says "num_pts": 0 is removed by the same filter: AP 1.
  EvalBox pb = pred_of(b, 0.8);
  pb.num_pts = 0;
  const EvalResult r2 = run_one({a, b}, {pred_of(a, 0.9), pb});
  EXPECT_NEAR(r2.metrics.ap(L("car"), 0), 1.0, kTol);
  EXPECT_EQ(r2.pred_filter.after_points, 1u);
}

TEST(EvalMetrics, BicyclesInABicycleRackAreIgnored) {
  // A rack 6 m long and 2 m wide at (10, 5), turned 30 degrees. One GT bicycle stands in it
  // (2 m along the rack's axis from its centre), one outside; a car also stands in the rack.
  // Only the outside bicycle and the car are predicted.
  core::NuscBox rack;
  rack.translation = {10, 5, 1};
  rack.size = {2, 6, 1.5};
  rack.rotation = core::Quat::from_yaw(kPi / 6);
  const EvalBox inside = gt_box(L("bicycle"), 10 + 2 * std::cos(kPi / 6), 5 + 2 * std::sin(kPi / 6));
  const EvalBox outside = gt_box(L("bicycle"), 20, -5);
  const EvalBox car = gt_box(L("car"), 10, 5);
  // With the rack: the in-rack bicycle is dropped, 1 GT, 1 TP -> AP 1; the car is kept (only
  // bicycles and motorcycles are filtered) -> AP 1.
  const EvalResult r = run_one({inside, outside, car}, {pred_of(outside, 0.9), pred_of(car, 0.9)}, {rack});
  EXPECT_NEAR(r.metrics.mean_dist_ap(L("bicycle")), 1.0, kTol);
  EXPECT_NEAR(r.metrics.mean_dist_ap(L("car")), 1.0, kTol);
  EXPECT_EQ(r.gt_filter.after_points, 3u);
  EXPECT_EQ(r.gt_filter.after_bike_racks, 2u);
  // Without the rack: 2 GT bicycles, one found -> P_k = 1 up to r = 0.5, 0 beyond (right=0):
  // AP = 40 * 0.9 / 90 / 0.9 = 4/9.
  const EvalResult no_rack = run_one({inside, outside, car}, {pred_of(outside, 0.9), pred_of(car, 0.9)});
  EXPECT_NEAR(no_rack.metrics.mean_dist_ap(L("bicycle")), 4.0 / 9, kTol);
  // A predicted bicycle in the rack is dropped too (it would otherwise be an FP).
  const EvalResult pred_in = run_one({inside, outside}, {pred_of(outside, 0.9), pred_of(inside, 0.95)}, {rack});
  EXPECT_EQ(pred_in.pred_filter.after_bike_racks, 1u);
  EXPECT_NEAR(pred_in.metrics.mean_dist_ap(L("bicycle")), 1.0, kTol);
}

TEST(EvalMetrics, PointInRackIncludesTheFaces) {
  core::NuscBox rack;
  rack.translation = {0, 0, 0};
  rack.size = {2, 4, 2};  // w = 2 (y), l = 4 (x), h = 2
  EXPECT_TRUE(point_in_nusc_box(rack, {2, 1, 1}));      // a corner
  EXPECT_TRUE(point_in_nusc_box(rack, {-2, -1, -1}));   // the opposite corner
  EXPECT_FALSE(point_in_nusc_box(rack, {2.001, 0, 0}));
  EXPECT_FALSE(point_in_nusc_box(rack, {0, 0, 1.001}));  // above: the test is 3D
  rack.rotation = core::Quat::from_yaw(kPi / 2);          // l now along y
  EXPECT_TRUE(point_in_nusc_box(rack, {0, 1.9, 0}));
  EXPECT_FALSE(point_in_nusc_box(rack, {1.9, 0, 0}));
}

TEST(EvalMetrics, BoxesBeyondTheClassRangeAreDropped) {
  // The ego stands at (100, 200). A car 49.9 m away is kept; a car exactly 50 m away
  // (30, 40 from the ego) is dropped — the test is ego_dist < range, strict; a pedestrian at
  // 40.5 m is beyond its 40 m range. Everything is predicted exactly.
  GtBuilder b;
  const EvalBox near_car = gt_box(L("car"), 149.9, 200), edge_car = gt_box(L("car"), 130, 240),
                ped = gt_box(L("pedestrian"), 140.5, 200);
  b.sample(token(1), {near_car, edge_car, ped}, {100, 200, 0});
  EvalBoxes p;
  p.add_sample(token(1), {pred_of(near_car, 0.9), pred_of(edge_car, 0.8), pred_of(ped, 0.7)});
  const EvalResult r = run(b.gt, p);
  EXPECT_EQ(r.gt_filter.total, 3u);
  EXPECT_EQ(r.gt_filter.after_range, 1u);
  EXPECT_EQ(r.pred_filter.after_range, 1u);
  // Car: 1 GT, 1 TP -> AP 1. Pedestrian: no GT left -> AP 0 although it was predicted.
  EXPECT_NEAR(r.metrics.mean_dist_ap(L("car")), 1.0, kTol);
  EXPECT_EQ(r.metrics.mean_dist_ap(L("pedestrian")), 0.0);
}

TEST(EvalMetrics, MatchingIsGreedyWithAStrictThreshold) {
  // Threshold 0.5 m: a prediction exactly 0.5 m away is not a match (min_dist < dist_th); at
  // 1.0 m it is. GT car at 10, prediction at 10.5.
  const EvalResult r = run_one({gt_box(L("car"), 10, 0)}, {pred_of(gt_box(L("car"), 10.5, 0), 0.9)});
  EXPECT_EQ(r.metrics.ap(L("car"), 0), 0.0);
  EXPECT_NEAR(r.metrics.ap(L("car"), 1), 1.0, kTol);
  // Scale error of a box twice as long: IoU = 8*1.5*... aligned boxes [2,4,1.5] vs [2,8,1.5]:
  // 12 / (12 + 24 - 12) = 0.5.
  EvalBox g = gt_box(L("car"), 0, 0), q = g;
  q.size = {2, 8, 1.5};
  EXPECT_DOUBLE_EQ(scale_iou(g, q), 0.5);
  EXPECT_TRUE(std::isnan(attr_acc(box(L("car"), 0, 0), box(L("car"), 0, 0))));  // GT without attribute
}

TEST(EvalMetrics, PredictionsMustMatchTheSplit) {
  GtBuilder pre(SplitKind::kPredefined);
  pre.sample(token(1), {gt_box(L("car"), 10, 0)}).sample(token(2), {});
  EvalBoxes missing;
  missing.add_sample(token(1));
  try {
    align_predictions(pre.gt, missing, kCfg, "results.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results.json: 1 of the 2 samples of test split are missing from the results"),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(token(2)), std::string::npos) << e.what();
  }
  EvalBoxes extra;
  extra.add_sample(token(1));
  extra.add_sample(token(2));
  extra.add_sample(token(3));
  try {
    align_predictions(pre.gt, extra, kCfg, "results.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 result samples are not part of test split"), std::string::npos) << e.what();
  }
  // A custom split ignores extra samples and iterates in the split's order.
  GtBuilder custom(SplitKind::kCustom);
  custom.sample(token(2), {}).sample(token(1), {});
  const EvalBoxes aligned = align_predictions(custom.gt, extra, kCfg);
  ASSERT_EQ(aligned.num_samples(), 2u);
  EXPECT_EQ(aligned.token(0), token(2));
  // In-process predictions are checked like a results file.
  EvalBoxes flat;
  EvalBox thin = pred_of(gt_box(L("car"), 1, 1), 0.5);
  thin.size[2] = 0;
  flat.add_sample(token(1), {pred_of(gt_box(L("car"), 1, 1), 0.5), thin});
  flat.add_sample(token(2));
  try {
    evaluate(pre.gt, flat, kCfg);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "predictions: results[\"" + token(1) + "\"][1].size[2]: sizes [w, l, h] must be > 0, found 0.0");
  }
  // More than max_boxes_per_sample boxes.
  EvalBoxes many;
  many.add_sample(token(1), std::vector<EvalBox>(501, pred_of(gt_box(L("car"), 1, 1), 0.5)));
  many.add_sample(token(2));
  try {
    align_predictions(pre.gt, many, kCfg, "results.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample " + token(1) + " has 501 boxes, at most 500"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace bevkd::core::eval
