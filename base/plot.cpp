#include "base/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/error.h"

namespace bevkd {

namespace {

constexpr int kTickLen = 5;
constexpr int kPad = 10;
constexpr int kTitleScale = 2;

// Maps data values on one axis to pixels (p0 at lo, p1 at hi).
struct Scale {
  double lo = 0, hi = 1;
  bool log = false;
  double p0 = 0, p1 = 1;

  double t(double v) const {
    if (log) return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    return (v - lo) / (hi - lo);
  }
  double px(double v) const { return p0 + t(v) * (p1 - p0); }
  bool usable(double v) const { return std::isfinite(v) && (!log || v > 0); }
};

double nice_step(double range, int target) {
  const double rough = range / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(rough)));
  const double r = rough / mag;
  const double m = r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10;
  return m * mag;
}

// The axis range: explicit bounds where given, else the data's extent widened to whole ticks.
Scale make_scale(const PlotAxis& axis, std::vector<double> values, int target_ticks) {
  Scale s;
  s.log = axis.log;
  values.erase(std::remove_if(values.begin(), values.end(), [&](double v) { return !s.usable(v); }), values.end());
  double lo, hi;
  if (values.empty()) {
    lo = axis.log ? 1 : 0;
    hi = axis.log ? 10 : 1;
  } else {
    lo = *std::min_element(values.begin(), values.end());
    hi = *std::max_element(values.begin(), values.end());
  }
  if (axis.min) lo = *axis.min;
  if (axis.max) hi = *axis.max;
  if (axis.log) {
    BEVKD_CHECK(lo > 0 && hi > 0, "plot axis \"", axis.label, "\": a log axis needs positive bounds, found [", lo, ", ", hi, "]");
    if (!axis.min) lo = std::pow(10.0, std::floor(std::log10(lo)));
    if (!axis.max) hi = std::pow(10.0, std::ceil(std::log10(hi)));
    if (!(hi > lo)) hi = lo * 10;
  } else {
    if (!(hi > lo)) {
      const double pad = lo != 0 ? std::abs(lo) * 0.1 : 1.0;
      if (!axis.min) lo -= pad;
      if (!axis.max || !(*axis.max > lo)) hi = lo + 2 * pad;
    }
    const double step = nice_step(hi - lo, target_ticks);
    if (!axis.min) lo = std::floor(lo / step) * step;
    if (!axis.max) hi = std::ceil(hi / step) * step;
  }
  BEVKD_CHECK(std::isfinite(lo) && std::isfinite(hi) && hi > lo, "plot axis \"", axis.label, "\": invalid range [", lo,
              ", ", hi, "]");
  s.lo = lo;
  s.hi = hi;
  return s;
}

// Tick positions and the step used for their labels.
std::vector<double> ticks_of(const Scale& s, int target, double* step) {
  if (!s.log) {
    *step = nice_step(s.hi - s.lo, target);
    return nice_ticks(s.lo, s.hi, target);
  }
  std::vector<double> t;
  const int d0 = static_cast<int>(std::floor(std::log10(s.lo) + 1e-9)), d1 = static_cast<int>(std::ceil(std::log10(s.hi) - 1e-9));
  const bool fine = d1 - d0 <= 2;
  for (int d = d0; d <= d1; ++d)
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && !fine) continue;
      const double v = m * std::pow(10.0, d);
      if (v >= s.lo * (1 - 1e-9) && v <= s.hi * (1 + 1e-9)) t.push_back(v);
    }
  *step = 0;  // log labels are formatted per value
  return t;
}

// Liang-Barsky: clips the segment to the rectangle; false if nothing is left.
bool clip(double& x0, double& y0, double& x1, double& y1, double xmin, double ymin, double xmax, double ymax) {
  double t0 = 0, t1 = 1;
  const double dx = x1 - x0, dy = y1 - y0;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {x0 - xmin, xmax - x0, y0 - ymin, ymax - y0};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0) {
      if (q[i] < 0) return false;
    } else {
      const double r = q[i] / p[i];
      if (p[i] < 0) t0 = std::max(t0, r);
      else t1 = std::min(t1, r);
    }
  }
  if (t0 > t1) return false;
  const double ox = x0, oy = y0;
  x0 = ox + t0 * dx;
  y0 = oy + t0 * dy;
  x1 = ox + t1 * dx;
  y1 = oy + t1 * dy;
  return true;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> t;
  if (!(std::isfinite(lo) && std::isfinite(hi) && hi > lo)) return t;
  const double step = nice_step(hi - lo, target);
  const double eps = step * 1e-9;
  for (double k = std::ceil((lo - eps) / step);; k += 1) {
    const double v = k * step;
    if (v > hi + eps) break;
    t.push_back(std::abs(v) < eps ? 0.0 : v);
  }
  return t;
}

std::string format_tick(double value, double step) {
  char buf[64];
  const double a = std::abs(value);
  if (step <= 0 || (a != 0 && (a >= 1e6 || a < 1e-4))) {
    std::snprintf(buf, sizeof buf, "%g", value);
    return buf;
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

LinePlot::LinePlot(LinePlotOptions options) : options_(std::move(options)) {
  BEVKD_CHECK(options_.width >= 120 && options_.height >= 90, "line plot: ", options_.width, "x", options_.height,
              " pixels is too small (at least 120x90)");
}

LinePlot& LinePlot::add_series(PlotSeries series) {
  BEVKD_CHECK(series.x.size() == series.y.size(), "line plot series \"", series.label, "\": ", series.x.size(),
              " x values but ", series.y.size(), " y values");
  series_.push_back(std::move(series));
  return *this;
}

LinePlot& LinePlot::add_reference_line(ReferenceLine line) {
  references_.push_back(std::move(line));
  return *this;
}

Canvas LinePlot::render() const {
  const LinePlotOptions& o = options_;
  Canvas c(o.width, o.height, colors::kWhite);

  std::vector<double> xs, ys;
  for (const PlotSeries& s : series_) {
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  for (const ReferenceLine& r : references_) (r.orientation == ReferenceLine::kVertical ? xs : ys).push_back(r.value);
  const int x_target = std::max(2, o.width / 110), y_target = std::max(2, o.height / 70);
  Scale sx = make_scale(o.x, xs, x_target), sy = make_scale(o.y, ys, y_target);
  double x_step = 0, y_step = 0;
  const std::vector<double> x_ticks = ticks_of(sx, x_target, &x_step), y_ticks = ticks_of(sy, y_target, &y_step);
  std::vector<std::string> y_labels;
  int y_label_w = 0;
  for (double v : y_ticks) {
    y_labels.push_back(format_tick(v, y_step));
    y_label_w = std::max(y_label_w, Canvas::text_width(y_labels.back()));
  }

  // Layout (pixels): title on top, y label and tick labels on the left, x tick labels and
  // label below.
  const int top = kPad + (o.title.empty() ? 0 : Canvas::text_height(kTitleScale) + kPad);
  const int left = kPad + (o.y.label.empty() ? 0 : Canvas::text_height() + kPad) + y_label_w + kTickLen + 4;
  const int bottom = o.height - 1 - kPad - (o.x.label.empty() ? 0 : Canvas::text_height() + kPad) -
                     Canvas::text_height() - kTickLen - 4;
  const int right = o.width - 1 - 2 * kPad;
  BEVKD_CHECK(right - left >= 20 && bottom - top >= 20, "line plot: ", o.width, "x", o.height,
              " pixels leave no room for the plot area");
  sx.p0 = left;
  sx.p1 = right;
  sy.p0 = bottom;
  sy.p1 = top;

  // Grid, ticks and tick labels.
  for (std::size_t i = 0; i < x_ticks.size(); ++i) {
    const double px = std::round(sx.px(x_ticks[i]));
    if (o.grid) c.line(px, top, px, bottom, colors::kLightGrey);
    c.line(px, bottom, px, bottom + kTickLen, colors::kBlack);
    const std::string label = format_tick(x_ticks[i], x_step);
    c.text(static_cast<int>(px) - Canvas::text_width(label) / 2, bottom + kTickLen + 4, label, colors::kBlack);
  }
  for (std::size_t i = 0; i < y_ticks.size(); ++i) {
    const double py = std::round(sy.px(y_ticks[i]));
    if (o.grid) c.line(left, py, right, py, colors::kLightGrey);
    c.line(left - kTickLen, py, left, py, colors::kBlack);
    c.text(left - kTickLen - 4 - Canvas::text_width(y_labels[i]), static_cast<int>(py) - Canvas::text_height() / 2,
           y_labels[i], colors::kBlack);
  }

  // Reference lines.
  for (const ReferenceLine& r : references_) {
    if (r.orientation == ReferenceLine::kVertical) {
      if (!sx.usable(r.value) || r.value < sx.lo || r.value > sx.hi) continue;
      const double px = std::round(sx.px(r.value));
      c.dashed_line(px, top, px, bottom, r.color);
      if (!r.label.empty()) c.text(static_cast<int>(px) + 4, top + 4, r.label, r.color);
    } else {
      if (!sy.usable(r.value) || r.value < sy.lo || r.value > sy.hi) continue;
      const double py = std::round(sy.px(r.value));
      c.dashed_line(left, py, right, py, r.color);
      if (!r.label.empty())
        c.text(right - 4 - Canvas::text_width(r.label), static_cast<int>(py) - Canvas::text_height() - 3, r.label, r.color);
    }
  }

  // Series: polylines broken at unusable points, clipped to the plot area.
  for (std::size_t si = 0; si < series_.size(); ++si) {
    const PlotSeries& s = series_[si];
    const Rgb col = s.color ? *s.color : colors::categorical(static_cast<int>(si));
    double dash_pos = 0;  // distance along the polyline, for dashes that run across segments
    constexpr double kDash = 6;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!sx.usable(s.x[i]) || !sy.usable(s.y[i])) continue;
      const double x1 = sx.px(s.x[i]), y1 = sy.px(s.y[i]);
      if (s.markers && x1 >= left && x1 <= right && y1 >= top && y1 <= bottom) c.circle(x1, y1, s.thickness + 1, col, true);
      if (i == 0 || !sx.usable(s.x[i - 1]) || !sy.usable(s.y[i - 1])) continue;
      double ax = sx.px(s.x[i - 1]), ay = sy.px(s.y[i - 1]), bx = x1, by = y1;
      const double seg = std::hypot(bx - ax, by - ay);
      if (!clip(ax, ay, bx, by, left, top, right, bottom)) {
        dash_pos += seg;
        continue;
      }
      if (!s.dashed) {
        c.line(ax, ay, bx, by, col, s.thickness);
        continue;
      }
      const double len = std::hypot(bx - ax, by - ay);
      for (double d = 0; d < len;) {
        const double phase = std::fmod(dash_pos + d, 2 * kDash);
        const double run = std::min(len - d, (phase < kDash ? kDash : 2 * kDash) - phase);
        if (phase < kDash && len > 0) {
          const double f0 = d / len, f1 = (d + run) / len;
          c.line(ax + f0 * (bx - ax), ay + f0 * (by - ay), ax + f1 * (bx - ax), ay + f1 * (by - ay), col, s.thickness);
        }
        d += run;
      }
      dash_pos += seg;
    }
  }

  // Frame, title, axis labels.
  c.rect(left, top, right, bottom, colors::kBlack);
  if (!o.title.empty())
    c.text((o.width - Canvas::text_width(o.title, kTitleScale)) / 2, kPad, o.title, colors::kBlack, kTitleScale);
  if (!o.x.label.empty())
    c.text((left + right - Canvas::text_width(o.x.label)) / 2, o.height - 1 - kPad - Canvas::text_height(), o.x.label,
           colors::kBlack);
  if (!o.y.label.empty())
    c.text_vertical(kPad, (top + bottom + Canvas::text_width(o.y.label)) / 2, o.y.label, colors::kBlack);

  // Legend.
  std::vector<std::size_t> listed;
  int label_w = 0;
  for (std::size_t i = 0; i < series_.size(); ++i)
    if (!series_[i].label.empty()) {
      listed.push_back(i);
      label_w = std::max(label_w, Canvas::text_width(series_[i].label));
    }
  if (o.legend != LegendPosition::kNone && !listed.empty()) {
    constexpr int kRow = 14, kSwatch = 22;
    const int w = 8 + kSwatch + 6 + label_w + 8, h = 6 + static_cast<int>(listed.size()) * kRow + 2;
    const bool at_left = o.legend == LegendPosition::kTopLeft || o.legend == LegendPosition::kBottomLeft;
    const bool at_top = o.legend == LegendPosition::kTopLeft || o.legend == LegendPosition::kTopRight;
    const int x0 = at_left ? left + 8 : right - 8 - w, y0 = at_top ? top + 8 : bottom - 8 - h;
    c.fill_rect(x0, y0, x0 + w, y0 + h, colors::kWhite);
    c.rect(x0, y0, x0 + w, y0 + h, colors::kGrey);
    for (std::size_t k = 0; k < listed.size(); ++k) {
      const PlotSeries& s = series_[listed[k]];
      const Rgb col = s.color ? *s.color : colors::categorical(static_cast<int>(listed[k]));
      const int cy = y0 + 6 + static_cast<int>(k) * kRow + Canvas::text_height() / 2;
      if (s.dashed) c.dashed_line(x0 + 8, cy, x0 + 8 + kSwatch, cy, col, 4, std::max(1, s.thickness));
      else c.line(x0 + 8, cy, x0 + 8 + kSwatch, cy, col, std::max(1, s.thickness));
      c.text(x0 + 8 + kSwatch + 6, cy - Canvas::text_height() / 2, s.label, colors::kBlack);
    }
  }
  return c;
}

void LinePlot::save_png(const std::string& path) const { render().save_png(path); }

}  // namespace bevkd
