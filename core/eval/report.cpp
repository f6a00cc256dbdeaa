#include "core/eval/report.h"

#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "base/fs.h"
#include "base/plot.h"
#include "base/json_writer.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

namespace {

std::string_view class_name(int label) { return kClassNames[static_cast<std::size_t>(label)]; }

// Python's "%.Nf" (NaN -> "nan").
std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

std::string format_summary(const DetectionMetrics& m) {
  std::string out;
  out += "mAP: " + fixed(m.mean_ap, 4) + "\n";
  for (int k = 0; k < kNumTpMetrics; ++k)
    out += cat(kTpMetricShortNames[static_cast<std::size_t>(k)], ": ", fixed(m.tp_errors[static_cast<std::size_t>(k)], 4), "\n");
  out += "NDS: " + fixed(m.nd_score, 4) + "\n";
  out += "Eval time: " + fixed(m.eval_time_s, 1) + "s\n\n";
  out += "Per-class results:\n";
  constexpr std::size_t kName = 22, kCol = 8;
  std::string header = pad("Object Class", kName) + pad("AP", kCol);
  for (double th : m.cfg.dist_ths) header += pad("AP@" + python_float_repr(th), kCol);
  for (const char* n : {"ATE", "ASE", "AOE", "AVE", "AAE"}) header += pad(n, kCol);
  while (!header.empty() && header.back() == ' ') header.pop_back();
  out += header + "\n";
  for (std::size_t p = 0; p < m.cfg.class_order.size(); ++p) {
    std::string row = pad(std::string(class_name(m.cfg.class_order[p])), kName) + pad(fixed(m.mean_dist_aps[p], 3), kCol);
    for (double ap : m.label_aps[p]) row += pad(fixed(ap, 3), kCol);
    for (double e : m.label_tp_errors[p]) row += pad(fixed(e, 3), kCol);
    while (!row.empty() && row.back() == ' ') row.pop_back();
    out += row + "\n";
  }
  return out;
}

std::string metrics_summary_json(const DetectionMetrics& m) {
  JsonWriter w(JsonFormat::python(2));
  w.begin_object();
  w.key("label_aps").begin_object();
  for (std::size_t p = 0; p < m.cfg.class_order.size(); ++p) {
    w.key(class_name(m.cfg.class_order[p])).begin_object();
    for (std::size_t t = 0; t < m.cfg.dist_ths.size(); ++t) w.key(python_float_repr(m.cfg.dist_ths[t])).value(m.label_aps[p][t]);
    w.end_object();
  }
  w.end_object();
  w.key("mean_dist_aps").begin_object();
  for (std::size_t p = 0; p < m.cfg.class_order.size(); ++p) w.key(class_name(m.cfg.class_order[p])).value(m.mean_dist_aps[p]);
  w.end_object();
  w.key("mean_ap").value(m.mean_ap);
  w.key("label_tp_errors").begin_object();
  for (std::size_t p = 0; p < m.cfg.class_order.size(); ++p) {
    w.key(class_name(m.cfg.class_order[p])).begin_object();
    for (int k = 0; k < kNumTpMetrics; ++k)
      w.key(kTpMetricNames[static_cast<std::size_t>(k)]).value(m.label_tp_errors[p][static_cast<std::size_t>(k)]);
    w.end_object();
  }
  w.end_object();
  w.key("tp_errors").begin_object();
  for (int k = 0; k < kNumTpMetrics; ++k)
    w.key(kTpMetricNames[static_cast<std::size_t>(k)]).value(m.tp_errors[static_cast<std::size_t>(k)]);
  w.end_object();
  w.key("tp_scores").begin_object();
  for (int k = 0; k < kNumTpMetrics; ++k)
    w.key(kTpMetricNames[static_cast<std::size_t>(k)]).value(m.tp_scores[static_cast<std::size_t>(k)]);
  w.end_object();
  w.key("nd_score").value(m.nd_score);
  w.key("eval_time").value(m.eval_time_s);
  w.key("cfg");
  write_detection_config(w, m.cfg);
  w.key("meta").begin_object();
  w.key("use_camera").value(m.meta.use_camera);
  w.key("use_lidar").value(m.meta.use_lidar);
  w.key("use_radar").value(m.meta.use_radar);
  w.key("use_map").value(m.meta.use_map);
  w.key("use_external").value(m.meta.use_external);
  w.end_object();
  w.end_object();
  return w.take();
}

std::string metrics_details_json(const MetricDataList& details, const DetectionConfig& cfg) {
  JsonWriter w(JsonFormat::python(2));
  w.begin_object();
  for (std::size_t p = 0; p < details.size(); ++p) {
    for (std::size_t t = 0; t < details[p].size(); ++t) {
      const MetricData& md = details[p][t];
      w.key(cat(class_name(cfg.class_order[p]), ":", python_float_repr(cfg.dist_ths[t]))).begin_object();
      w.key("recall").value(md.recall);
      w.key("precision").value(md.precision);
      w.key("confidence").value(md.confidence);
      w.key("trans_err").value(md.tp(TpMetric::kTrans));
      w.key("vel_err").value(md.tp(TpMetric::kVel));
      w.key("scale_err").value(md.tp(TpMetric::kScale));
      w.key("orient_err").value(md.tp(TpMetric::kOrient));
      w.key("attr_err").value(md.tp(TpMetric::kAttr));
      w.end_object();
    }
  }
  w.end_object();
  return w.take();
}

void write_pr_curves(const std::string& dir, const MetricDataList& details, const DetectionMetrics& m) {
  make_dirs(dir);
  const DetectionConfig& cfg = m.cfg;
  auto add_limits = [&](LinePlot& plot) {
    plot.add_reference_line({ReferenceLine::kVertical, cfg.min_recall, colors::kGrey, "min recall"});
    plot.add_reference_line({ReferenceLine::kHorizontal, cfg.min_precision, colors::kGrey, "min precision"});
  };
  for (std::size_t p = 0; p < details.size(); ++p) {
    const int label = cfg.class_order[p];
    LinePlotOptions o;
    o.width = 640;
    o.height = 480;
    o.title = cat(class_name(label), ": mean AP ", fixed(100 * m.mean_dist_aps[p], 1));
    o.x = {"Recall", 0.0, 1.0, false};
    o.y = {"Precision", 0.0, 1.05, false};
    o.legend = LegendPosition::kTopRight;
    LinePlot plot(o);
    for (std::size_t t = 0; t < details[p].size(); ++t)
      plot.add_series({cat("Dist. : ", python_float_repr(cfg.dist_ths[t]), ", AP: ", fixed(100 * m.label_aps[p][t], 1)),
                       details[p][t].recall, details[p][t].precision, colors::categorical(static_cast<int>(t))});
    add_limits(plot);
    plot.save_png(cat(dir, "/", class_name(label), "_pr.png"));
  }
  for (std::size_t t = 0; t < cfg.dist_ths.size(); ++t) {
    LinePlotOptions o;
    o.width = 640;
    o.height = 480;
    o.title = cat("Dist. thres.: ", python_float_repr(cfg.dist_ths[t]), " m");
    o.x = {"Recall", 0.0, 1.0, false};
    o.y = {"Precision", 0.0, 1.05, false};
    LinePlot plot(o);
    for (std::size_t p = 0; p < details.size(); ++p)
      plot.add_series({cat(class_name(cfg.class_order[p]), ": ", fixed(100 * m.label_aps[p][t], 1)), details[p][t].recall,
                       details[p][t].precision, colors::categorical(static_cast<int>(p))});
    add_limits(plot);
    plot.save_png(cat(dir, "/dist_pr_", python_float_repr(cfg.dist_ths[t]), ".png"));
  }
}

void write_eval_outputs(const std::string& output_dir, const EvalResult& r, bool plots) {
  make_dirs(output_dir);
  write_file_atomic(output_dir + "/metrics_summary.json", metrics_summary_json(r.metrics));
  write_file_atomic(output_dir + "/metrics_details.json", metrics_details_json(r.details, r.metrics.cfg));
  if (plots) write_pr_curves(output_dir + "/plots", r.details, r.metrics);
}

}  // namespace bevkd::core::eval
