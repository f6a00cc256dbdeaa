// bevkd-inspect render: one sample's BEV picture.
//
// The map shows the BEV grid top-down with +x (forward) to the right and +y (left) up: cell
// (i, j) (row i <-> y, column j <-> x, DESIGN.md "BEV grid") is drawn at picture column j and
// picture row H - 1 - i. Colours: per-cell L2 norm of the tap's channels (viridis, scaled to
// the 99.5th percentile), the foreground mask as a white tint, GT boxes solid and teacher boxes
// dashed in their class colour, each with a tick from the centre to the front edge.
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "schemas/shard_names.h"
#include "storage/half.h"
#include "storage/inspect.h"

namespace bevkd::storage::inspect {

namespace ds = schemas::ds;
namespace {

struct Mapper {
  BevGrid g;
  int px;
  int x0, y0;  // top-left of the map panel
  double col(double x) const { return x0 + (x - g.range[0]) / g.dx * px; }
  double row(double y) const { return y0 + (g.range[4] - y) / g.dy * px; }
};

// A box (x, y, z, l, w, h, yaw, vx, vy) under a BEV augmentation `bda` (3x3, row-major): the
// centre and the heading/lateral axes are mapped, so flips, rotations and scaling carry over.
std::array<double, 5> augment_box(const float* b, const float* bda) {
  auto apply = [&](double x, double y, double z) {
    return std::array<double, 3>{bda[0] * x + bda[1] * y + bda[2] * z, bda[3] * x + bda[4] * y + bda[5] * z,
                                 bda[6] * x + bda[7] * y + bda[8] * z};
  };
  const auto c = apply(b[0], b[1], b[2]);
  const double cy = std::cos(b[6]), sy = std::sin(b[6]);
  const auto head = apply(cy, sy, 0);
  const auto side = apply(-sy, cy, 0);
  const double l = b[3] * std::hypot(head[0], head[1]);
  const double w = b[4] * std::hypot(side[0], side[1]);
  return {c[0], c[1], l, w, std::atan2(head[1], head[0])};
}

void draw_box(Canvas& c, const Mapper& m, const std::array<double, 5>& b, Rgb colour, bool dashed, int thickness) {
  const double x = b[0], y = b[1], l = b[2], w = b[3], yaw = b[4];
  const double cx = std::cos(yaw), sx = std::sin(yaw);
  std::array<std::array<double, 2>, 4> corners;
  const double sl[4] = {0.5, 0.5, -0.5, -0.5}, sw[4] = {0.5, -0.5, -0.5, 0.5};
  for (int k = 0; k < 4; ++k) {
    const double px = x + sl[k] * l * cx - sw[k] * w * sx;
    const double py = y + sl[k] * l * sx + sw[k] * w * cx;
    corners[k] = {m.col(px), m.row(py)};
  }
  for (int k = 0; k < 4; ++k) {
    const auto& a = corners[k];
    const auto& e = corners[(k + 1) % 4];
    if (dashed) c.dashed_line(a[0], a[1], e[0], e[1], colour, 3, thickness);
    else c.line(a[0], a[1], e[0], e[1], colour, thickness);
  }
  // Heading tick: centre to the middle of the front edge.
  c.line(m.col(x), m.row(y), m.col(x + 0.5 * l * cx), m.row(y + 0.5 * l * sx), colour, thickness);
}

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, std::fabs(v) >= 100 ? "%.0f" : "%.3g", v);
  return buf;
}

}  // namespace

Canvas render_sample(const ShardReader& r, std::int64_t sample, const RenderOptions& opts) {
  const ShardHeader& h = r.header();
  const BevGrid& g = h.meta.grid;
  BEVKD_CHECK(opts.view >= 0 && opts.view < h.meta.num_views, "render: view ", opts.view, " out of range (the shard has ",
              h.meta.num_views, " views)");
  BEVKD_CHECK(opts.cell_px >= 1 && opts.cell_px <= 32, "render: cell_px ", opts.cell_px, " outside [1, 32]");
  std::string tap = opts.tap;
  if (tap.empty()) tap = h.meta.find_tap("neck") ? "neck" : h.meta.taps.front().name;
  const TapSpec* tspec = h.meta.find_tap(tap);
  BEVKD_CHECK(tspec != nullptr, "render: shard ", r.path(), " has no teacher tap \"", tap, "\"");

  ReadOptions one_view;
  one_view.view = opts.view;
  const std::string feat_name = std::string(ds::kTeacherFeaturesPrefix) + tap;
  const Array feat = r.read_field(sample, feat_name, one_view);  // [1, C, H, W]
  const std::int64_t C = tspec->channels, H = g.H, W = g.W, HW = H * W;
  std::vector<float> scale(static_cast<std::size_t>(C), 1.f);
  if (tspec->dtype == DType::kInt8) {
    const Array s = r.read_field(sample, std::string(ds::kTeacherFeatureScalesPrefix) + tap, one_view);  // [1, C]
    std::copy(s.data<float>(), s.data<float>() + C, scale.begin());
  }
  std::vector<double> energy(static_cast<std::size_t>(HW), 0.0);
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t k = 0; k < HW; ++k) {
      const double v = tspec->dtype == DType::kInt8 ? feat.data<std::int8_t>()[c * HW + k] * double(scale[c])
                                                    : half_to_float(feat.data<std::uint16_t>()[c * HW + k]);
      energy[k] += v * v;
    }
  for (double& e : energy) e = std::sqrt(e);
  std::vector<double> sorted = energy;
  const std::size_t q = std::min(sorted.size() - 1, static_cast<std::size_t>(0.995 * sorted.size()));
  std::nth_element(sorted.begin(), sorted.begin() + q, sorted.end());
  double vmax = sorted[q];
  if (vmax <= 0) vmax = *std::max_element(energy.begin(), energy.end());
  if (vmax <= 0) vmax = 1;

  const Array mask = r.read_field(sample, ds::kFgMask, one_view);            // [1, H, W]
  const Array bda = r.read_field(sample, ds::kViewBda, one_view);            // [1, 3, 3]
  const Array gt_boxes = r.read_field(sample, ds::kGtBoxes);                 // [G, 9]
  const Array gt_labels = r.read_field(sample, ds::kGtLabels);               // [G]
  const Array t_boxes = r.read_field(sample, ds::kTeacherBoxes, one_view);   // [M, 9]
  const Array t_labels = r.read_field(sample, ds::kTeacherLabels, one_view);
  const Array t_scores = r.read_field(sample, ds::kTeacherScores, one_view);
  std::string token;
  try {
    token = r.read_field(sample, ds::kSampleToken).string_at(0);
  } catch (const Error&) {
  }

  const int px = opts.cell_px;
  const int map_w = static_cast<int>(W) * px, map_h = static_cast<int>(H) * px;
  const int legend_w = 260, top = 30, margin = 10;
  const int height = top + std::max(map_h, 420) + 2 * margin;
  Canvas canvas(margin + map_w + margin + legend_w, height, colors::kWhite);
  Mapper m{g, px, margin, top};

  for (std::int64_t i = 0; i < H; ++i)
    for (std::int64_t j = 0; j < W; ++j) {
      const Rgb cval = colors::viridis(energy[i * W + j] / vmax);
      const int x0 = m.x0 + static_cast<int>(j) * px, y0 = m.y0 + static_cast<int>(H - 1 - i) * px;
      canvas.fill_rect(x0, y0, x0 + px - 1, y0 + px - 1, cval);
      const double fg = half_to_float(mask.data<std::uint16_t>()[i * W + j]);
      if (fg > 0.02)
        for (int dy = 0; dy < px; ++dy)
          for (int dx = 0; dx < px; ++dx) canvas.blend(x0 + dx, y0 + dy, colors::kWhite, 0.55 * std::min(1.0, fg));
    }

  // Boxes are clipped to the map (GT beyond the grid must not run into the legend).
  canvas.set_clip(m.x0, m.y0, m.x0 + map_w - 1, m.y0 + map_h - 1);
  // Ego vehicle at the origin of the key-frame ego frame (4.5 m x 1.9 m, facing +x).
  draw_box(canvas, m, {0, 0, 4.5, 1.9, 0}, colors::kWhite, false, 1);

  const float* bd = bda.data<float>();
  for (std::int64_t k = 0; k < gt_boxes.dim(0); ++k) {
    const int label = gt_labels.data<std::int16_t>()[k];
    draw_box(canvas, m, augment_box(gt_boxes.data<float>() + 9 * k, bd), colors::categorical(label), false, 2);
  }
  const float identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  std::int64_t drawn_teacher = 0;
  for (std::int64_t k = 0; k < t_boxes.dim(0); ++k) {
    if (t_scores.data<float>()[k] < opts.score_min) continue;
    ++drawn_teacher;
    const int label = t_labels.data<std::int16_t>()[k];
    // Teacher boxes of view v were decoded in that view's frame already.
    draw_box(canvas, m, augment_box(t_boxes.data<float>() + 9 * k, identity), colors::categorical(label), true, 1);
  }
  canvas.reset_clip();
  canvas.rect(m.x0 - 1, m.y0 - 1, m.x0 + map_w, m.y0 + map_h, colors::kBlack);

  // Scale bar: 10 m (or 5 m on small grids) at the bottom-left of the map.
  const double bar_m = (g.range[3] - g.range[0]) >= 40 ? 10.0 : 5.0;
  const int bar_px = static_cast<int>(std::lround(bar_m / g.dx * px));
  const int bx = m.x0 + 8, by = m.y0 + map_h - 10;
  canvas.fill_rect(bx - 2, by - 12, bx + bar_px + 2, by + 4, colors::kBlack);
  canvas.line(bx, by, bx + bar_px, by, colors::kWhite, 2);
  canvas.text(bx, by - 10, cat(short_number(bar_m), " m"), colors::kWhite);

  const std::string title = cat(std::filesystem::path(r.path()).filename().string(), "  sample ", sample,
                                token.empty() ? "" : cat("  ", token));
  canvas.text(margin, 8, title, colors::kBlack, 2);

  // Legend.
  int lx = margin + map_w + margin + 8, ly = top;
  auto line = [&](const std::string& s, Rgb c = colors::kBlack) {
    canvas.text(lx, ly, s, c);
    ly += 12;
  };
  line(cat("tap ", tap, " [C=", C, "] ", dtype_name(tspec->dtype), ", view ", opts.view));
  line("energy = L2 norm over channels");
  for (int k = 0; k < 200; ++k) {
    const Rgb col = colors::viridis(k / 199.0);
    canvas.line(lx + k, ly, lx + k, ly + 10, col);
  }
  ly += 13;
  line("0");
  canvas.text(lx + 200 - Canvas::text_width(short_number(vmax)), ly - 12, short_number(vmax), colors::kBlack);
  ly += 4;
  for (int k = 0; k <= 14; ++k) canvas.line(lx + k, ly, lx + k, ly + 8, colors::viridis(0.15));
  for (int k = 0; k <= 14; ++k)
    for (int d = 0; d <= 8; ++d) canvas.blend(lx + k, ly + d, colors::kWhite, 0.55 * k / 14.0);
  canvas.rect(lx, ly, lx + 14, ly + 8, colors::kBlack);
  canvas.text(lx + 20, ly, "foreground mask: white tint ~ value", colors::kBlack);
  ly += 16;
  canvas.line(lx, ly + 4, lx + 20, ly + 4, colors::kBlack, 2);
  canvas.text(lx + 26, ly, cat("GT box (", gt_boxes.dim(0), ")"), colors::kBlack);
  ly += 12;
  canvas.dashed_line(lx, ly + 4, lx + 20, ly + 4, colors::kBlack, 3, 1);
  canvas.text(lx + 26, ly, cat("teacher box, score>=", short_number(opts.score_min), " (", drawn_teacher, ")"),
              colors::kBlack);
  ly += 12;
  line("tick: centre -> front edge");
  ly += 6;
  for (std::size_t k = 0; k < h.meta.class_names.size(); ++k) {
    canvas.fill_rect(lx, ly, lx + 14, ly + 8, colors::categorical(static_cast<int>(k)));
    canvas.text(lx + 20, ly, cat(k, " ", h.meta.class_names[k]), colors::kBlack);
    ly += 12;
  }
  ly += 8;
  line("axes: +x (forward) right,");
  line("      +y (left) up; ego at origin");
  line(cat("grid ", H, "x", W, " cells of ", short_number(g.dx), "x", short_number(g.dy), " m"));
  line(cat("x ", short_number(g.range[0]), "..", short_number(g.range[3]), " m, y ", short_number(g.range[1]), "..",
           short_number(g.range[4]), " m"));
  return canvas;
}

}  // namespace bevkd::storage::inspect
