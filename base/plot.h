// Line charts on a Canvas (base/canvas.h): axes with "nice" ticks and tick labels, optional log
// scales, a grid, several series with a legend, reference lines, a title and axis labels —
// for the PR curves of bevkd-eval and the loss/metric curves of bevkd-train. No LibTorch.
//
//   LinePlotOptions opts;
//   opts.title = "car";
//   opts.x.label = "Recall";
//   LinePlot plot(opts);
//   plot.add_series({"AP@0.5 m", recall, precision});
//   plot.add_reference_line({ReferenceLine::kVertical, 0.1, colors::kGrey, "min recall"});
//   plot.save_png("car_pr.png");
//
// Data coordinates: x to the right, y up. Points with a non-finite coordinate (or <= 0 on a log
// axis) are skipped and break the line, so a NaN marks a gap. Everything is clipped to the plot
// area.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/canvas.h"

namespace bevkd {

struct PlotSeries {
  std::string label;          // legend entry; empty: not listed
  std::vector<double> x, y;   // same length
  std::optional<Rgb> color;   // default: colors::categorical(series index)
  int thickness = 2;          // line width in pixels
  bool dashed = false;
  bool markers = false;       // a dot at every point
};

struct PlotAxis {
  std::string label;
  std::optional<double> min, max;  // unset: from the data, widened to the enclosing ticks
  bool log = false;                // log10 scale (decade ticks)
};

enum class LegendPosition { kNone, kTopRight, kTopLeft, kBottomRight, kBottomLeft };

struct LinePlotOptions {
  int width = 800, height = 560;  // pixels
  std::string title;
  PlotAxis x, y;
  bool grid = true;
  LegendPosition legend = LegendPosition::kTopRight;
};

// A horizontal (y = value) or vertical (x = value) dashed line across the plot area.
struct ReferenceLine {
  enum Orientation { kHorizontal, kVertical };
  Orientation orientation = kHorizontal;
  double value = 0;
  Rgb color = colors::kGrey;
  std::string label;  // drawn beside the line; empty: none
};

class LinePlot {
 public:
  explicit LinePlot(LinePlotOptions options = {});

  // Throws bevkd::Error if x and y differ in length.
  LinePlot& add_series(PlotSeries series);
  LinePlot& add_reference_line(ReferenceLine line);

  Canvas render() const;
  // Renders and writes an 8-bit RGB PNG atomically; throws bevkd::Error naming the path.
  void save_png(const std::string& path) const;

  const LinePlotOptions& options() const { return options_; }

 private:
  LinePlotOptions options_;
  std::vector<PlotSeries> series_;
  std::vector<ReferenceLine> references_;
};

// About `target` tick positions at 1-2-5 x 10^k steps covering [lo, hi] (inside it).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// A tick label with as many decimals as the tick step needs ("0.2", "15", "1e-05").
std::string format_tick(double value, double step);

}  // namespace bevkd
