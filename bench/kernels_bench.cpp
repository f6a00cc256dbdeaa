// bevkd-bench-kernels: the kernels/ ops at the sizes the models use, each next to a naive
// LibTorch implementation of the same computation, timed in one run (median of --reps runs
// after a warm-up). CPU always; the CUDA twins too when a GPU is visible.
//
//   build/bench/bevkd-bench-kernels [--reps 10] [--threads N]
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "kernels/backend.h"
#include "kernels/bev_pool.h"
#include "kernels/deform_attn.h"
#include "kernels/gaussian.h"
#include "kernels/voxelize.h"

namespace bevkd {
namespace {

using kernels::BevPoolGeometry;

struct Timer {
  torch::Device device;
  int reps;

  // Median wall time of fn in milliseconds (one warm-up call; the GPU is synchronised).
  double ms(const std::function<void()>& fn) const {
    fn();
    sync();
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      sync();
      t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
  void sync() const {
    if (device.is_cuda()) torch::cuda::synchronize();
  }
};

void row(const std::string& op, double ours, double naive) {
  if (naive > 0)
    std::printf("| %-52s | %10.2f | %10.2f | %7.1fx |\n", op.c_str(), ours, naive, naive / ours);
  else
    std::printf("| %-52s | %10.2f | %10s | %8s |\n", op.c_str(), ours, "-", "-");
}

// BEVDepth R50 frustum: 6 cameras around the car, 256 x 704 input, stride 16 -> 16 x 44
// features, depth bins d_bound [2, 58, 0.5] (112), ego-frame xyz [1, 6, 112, 16, 44, 3].
torch::Tensor bevdepth_frustum() {
  const int64_t N = 6, D = 112, Hf = 16, Wf = 44;
  const double f = 557.0, cx = 352.0, cy = 128.0;  // nuScenes intrinsics scaled to 704 px
  const double yaws[N] = {0.0, -0.96, 0.96, M_PI, -1.92, 1.92};
  const torch::Tensor d = torch::arange(2.0, 58.0, 0.5, torch::kFloat64).view({D, 1, 1});
  const torch::Tensor v = torch::linspace(0, 255, Hf, torch::kFloat64).view({1, Hf, 1});
  const torch::Tensor u = torch::linspace(0, 703, Wf, torch::kFloat64).view({1, 1, Wf});
  // camera frame: x right, y down, z forward
  const torch::Tensor xc = ((u - cx) / f * d).expand({D, Hf, Wf}), yc = ((v - cy) / f * d).expand({D, Hf, Wf});
  const torch::Tensor zc = d.expand({D, Hf, Wf});
  std::vector<torch::Tensor> cams;
  for (int64_t n = 0; n < N; ++n) {
    const double c = std::cos(yaws[n]), s = std::sin(yaws[n]);
    // ego = R * cam + t with camera x -> (s, -c, 0), y -> (0, 0, -1), z -> (c, s, 0)
    const torch::Tensor x = s * xc + c * zc + 1.0 * c, y = -c * xc + s * zc + 1.0 * s, z = -yc + 1.5;
    cams.push_back(torch::stack({x, y, z}, -1));
  }
  return torch::stack(cams).unsqueeze(0).to(torch::kFloat32).contiguous();
}

// Naive LSS pooling with LibTorch ops: the full depth x feature outer product, then
// index_add into the cells (kept / cell: the kept points and their flat cells).
torch::Tensor naive_pool(const torch::Tensor& depth, const torch::Tensor& feat, const torch::Tensor& kept,
                         const torch::Tensor& cell, int64_t B, int64_t H, int64_t W) {
  const int64_t C = feat.size(4);
  const torch::Tensor prod = depth.unsqueeze(-1) * feat.unsqueeze(2);  // [B, N, D, Hf, Wf, C]
  const torch::Tensor out =
      torch::zeros({B * H * W, C}, feat.options()).index_add(0, cell, prod.view({-1, C}).index_select(0, kept));
  return out.view({B, H, W, C}).permute({0, 3, 1, 2}).contiguous();
}

// A 10-sweep nuScenes-like cloud: 250k points (x, y, z, intensity, time lag), ground returns
// dense near the car plus vertical structure.
torch::Tensor lidar_cloud() {
  torch::manual_seed(1);
  const int64_t P = 250000;
  const torch::Tensor r = 1.5 + 70.0 * torch::rand({P}).pow(2), a = torch::rand({P}) * 2 * M_PI;
  torch::Tensor z = -1.8 + 0.05 * torch::randn({P});
  const torch::Tensor tall = torch::rand({P}) < 0.3;
  z = torch::where(tall, -1.8 + 3.5 * torch::rand({P}), z);
  const torch::Tensor lag = torch::randint(0, 10, {P}).to(torch::kFloat32) * 0.05f;
  return torch::stack({r * a.cos(), r * a.sin(), z, torch::rand({P}) * 255, lag}, 1).contiguous();
}

// CenterPoint-style boxes: 100 objects in the 102.4 m square, car-to-bus sizes.
std::pair<torch::Tensor, torch::Tensor> scene_boxes() {
  torch::manual_seed(2);
  torch::Tensor b = torch::zeros({100, 9});
  b.select(1, 0).uniform_(-50, 50);
  b.select(1, 1).uniform_(-50, 50);
  b.select(1, 3).uniform_(0.5, 12);
  b.select(1, 4).uniform_(0.5, 3);
  b.select(1, 5).uniform_(1, 4);
  b.select(1, 6).uniform_(-3.14, 3.14);
  return {b, torch::randint(0, 10, {100}, torch::kInt64)};
}

// Naive heat maps: mmdet3d's per-box loop with LibTorch slicing and torch::max.
torch::Tensor naive_heatmaps(const torch::Tensor& boxes, const torch::Tensor& labels,
                             const kernels::GaussianOptions& o) {
  const int64_t W = o.grid.W, H = o.grid.H;
  const float voxel_x = static_cast<float>(o.grid.dx / o.out_size_factor),
              voxel_y = static_cast<float>(o.grid.dy / o.out_size_factor);
  const float x_min = static_cast<float>(o.grid.x_min()), y_min = static_cast<float>(o.grid.y_min());
  torch::Tensor heat = torch::zeros({10, H, W}, boxes.options());
  const torch::Tensor bc = boxes.cpu(), lc = labels.cpu();
  for (int64_t i = 0; i < bc.size(0); ++i) {
    const float* b = bc.data_ptr<float>() + i * bc.size(1);
    const float width = b[4] / voxel_x / o.out_size_factor, length = b[3] / voxel_y / o.out_size_factor;
    if (!(width > 0 && length > 0)) continue;
    const int64_t r =
        std::max<int64_t>(o.min_radius, static_cast<int64_t>(kernels::gaussian_radius(length, width, o.min_overlap)));
    const int64_t x = static_cast<int64_t>((b[0] - x_min) / voxel_x / o.out_size_factor);
    const int64_t y = static_cast<int64_t>((b[1] - y_min) / voxel_y / o.out_size_factor);
    if (x < 0 || x >= W || y < 0 || y >= H) continue;
    const double sigma = (2.0 * r + 1) / 6;
    const torch::Tensor g1 = torch::arange(-r, r + 1, torch::kFloat64);
    torch::Tensor g = torch::exp(-(g1.view({-1, 1}).pow(2) + g1.view({1, -1}).pow(2)) / (2 * sigma * sigma));
    g = torch::where(g < 2.220446049250313e-16, torch::zeros_like(g), g).to(boxes.options());
    const int64_t left = std::min(x, r), right = std::min(W - x, r + 1), top = std::min(y, r),
                  bottom = std::min(H - y, r + 1);
    torch::Tensor region = heat[lc[i].item<int64_t>()].slice(0, y - top, y + bottom).slice(1, x - left, x + right);
    region.copy_(torch::max(region, g.slice(0, r - top, r + bottom).slice(1, r - left, r + right)));
  }
  return heat;
}

// Deformable DETR's pure-PyTorch core for one level: per head, grid_sample the head's map at
// g = 2·loc − 1 and sum over the K points with the weights.
torch::Tensor naive_deform_attn(const torch::Tensor& value, int64_t H, int64_t W, const torch::Tensor& loc,
                                const torch::Tensor& attn) {
  namespace F = torch::nn::functional;
  const int64_t B = value.size(0), M = value.size(2), Dh = value.size(3);
  std::vector<torch::Tensor> heads;
  for (int64_t m = 0; m < M; ++m) {
    const torch::Tensor map = value.select(2, m).transpose(1, 2).reshape({B, Dh, H, W});
    const torch::Tensor s = F::grid_sample(
        map, loc.select(2, m) * 2 - 1,
        F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
    heads.push_back((s * attn.select(2, m).unsqueeze(1)).sum(-1).transpose(1, 2));
  }
  return torch::cat(heads, -1);
}

void run_device(const torch::Device& dev, int reps) {
  const Timer timer{dev, reps};
  std::printf("\n%s\n\n", dev.is_cuda() ? "CUDA" : cat("CPU, ", at::get_num_threads(), " threads").c_str());
  std::printf("| %-52s | %10s | %10s | %8s |\n", "op", "bevkd ms", "naive ms", "speed-up");
  std::printf("|%s|%s|%s|%s|\n", std::string(54, '-').c_str(), std::string(12, '-').c_str(),
              std::string(12, '-').c_str(), std::string(10, '-').c_str());

  // ---- BEV pooling at BEVDepth R50 size ----
  const int64_t B = 1, N = 6, D = 112, Hf = 16, Wf = 44, C = 80;
  const BevGrid grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 0.8);  // 128 x 128
  const torch::Tensor pts = bevdepth_frustum().to(dev);
  BevPoolGeometry geom = kernels::bev_pool_prepare(pts, grid);
  // the naive pipeline's geometry step: cells with LibTorch ops, no sorting
  auto naive_geometry = [&] {
    const torch::Tensor p = pts.view({-1, 3});
    const torch::Tensor col = ((p.select(1, 0) - static_cast<float>(grid.range[0])) / static_cast<float>(grid.dx)).floor();
    const torch::Tensor rowc = ((p.select(1, 1) - static_cast<float>(grid.range[1])) / static_cast<float>(grid.dy)).floor();
    const torch::Tensor keep = (col >= 0) & (col < 128) & (rowc >= 0) & (rowc < 128) &
                               (p.select(1, 2) >= static_cast<float>(grid.range[2])) &
                               (p.select(1, 2) < static_cast<float>(grid.range[5]));
    const torch::Tensor kept = keep.nonzero().squeeze(1);
    return std::make_pair(kept, (rowc * 128 + col).index_select(0, kept).to(torch::kInt64));
  };
  const auto [kept, cell] = naive_geometry();
  row(cat("BEV pool prepare, ", N, "x", D, "x", Hf, "x", Wf, " pts (", geom.num_kept(), " kept)"),
      timer.ms([&] { geom = kernels::bev_pool_prepare(pts, grid); }), timer.ms([&] { naive_geometry(); }));

  torch::manual_seed(3);
  const torch::Tensor depth = torch::rand({B, N, D, Hf, Wf}, dev).softmax(2);
  const torch::Tensor feat = torch::randn({B, N, Hf, Wf, C}, dev);
  const torch::Tensor ours = kernels::bev_pool(depth, feat, geom),
                      naive = naive_pool(depth, feat, kept, cell, B, 128, 128);
  const double err = (ours - naive).abs().max().item<double>() / naive.abs().max().item<double>();
  BEVKD_CHECK(err < 1e-4, "bench: bev_pool and the naive pooling disagree (relative error ", err, ")");
  row(cat("BEV pool forward, C=", C, " -> 128x128"), timer.ms([&] { kernels::bev_pool(depth, feat, geom); }),
      timer.ms([&] { naive_pool(depth, feat, kept, cell, B, 128, 128); }));
  const torch::Tensor w = torch::randn({B, C, 128, 128}, dev);
  auto fwd_bwd = [&](bool bevkd) {
    const torch::Tensor d = depth.detach().requires_grad_(true), f = feat.detach().requires_grad_(true);
    const torch::Tensor out = bevkd ? kernels::bev_pool(d, f, geom) : naive_pool(d, f, kept, cell, B, 128, 128);
    (out * w).sum().backward();
  };
  row("BEV pool forward + backward", timer.ms([&] { fwd_bwd(true); }), timer.ms([&] { fwd_bwd(false); }));

  // ---- voxelization of a 10-sweep cloud ----
  const torch::Tensor cloud = lidar_cloud().to(dev);
  const auto vopt =
      kernels::VoxelizeOptions::pillars(BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 0.2), 20, 30000);
  const auto vox = kernels::voxelize(cloud, vopt);
  row(cat("voxelize 250k pts (10 sweeps), 0.2 m pillars -> ", vox.coords.size(0)),
      timer.ms([&] { kernels::voxelize(cloud, vopt); }), -1);

  // ---- Gaussian heat maps for 100 boxes ----
  const auto [boxes_cpu, labels_cpu] = scene_boxes();
  const torch::Tensor boxes = boxes_cpu.to(dev), labels = labels_cpu.to(dev);
  kernels::GaussianOptions gopt;  // CenterPoint nuScenes: 128 x 128, voxel 0.1, stride 8
  gopt.grid = grid;
  gopt.out_size_factor = 8;
  const torch::Tensor heat = kernels::gaussian_heatmaps(boxes, labels, 10, gopt);
  BEVKD_CHECK(torch::allclose(heat.cpu(), naive_heatmaps(boxes, labels, gopt).cpu()),
              "bench: gaussian_heatmaps and the naive drawing disagree");
  row("Gaussian heat maps, 100 boxes -> 10x128x128",
      timer.ms([&] { kernels::gaussian_heatmaps(boxes, labels, 10, gopt); }),
      timer.ms([&] { naive_heatmaps(boxes, labels, gopt); }));

  // ---- single-scale deformable attention: FD3D's distillation head over a 128 x 128 map ----
  const int64_t Hm = 128, Wm = 128, heads = 8, Dh = 32, K = 4;
  torch::manual_seed(4);
  const torch::Tensor value = torch::randn({1, Hm * Wm, heads, Dh}, dev);
  for (const int64_t Q : {300, 900}) {
    const torch::Tensor loc = torch::rand({1, Q, heads, K, 2}, dev) * 1.1 - 0.05;
    const torch::Tensor attn = torch::rand({1, Q, heads, K}, dev).softmax(-1);
    const torch::Tensor dout = torch::randn({1, Q, heads * Dh}, dev);
    const double derr = (kernels::deform_attn(value, Hm, Wm, loc, attn) - naive_deform_attn(value, Hm, Wm, loc, attn))
                            .abs()
                            .max()
                            .item<double>();
    BEVKD_CHECK(derr < 1e-4, "bench: deform_attn and the grid_sample reference disagree (", derr, ")");
    row(cat("deform attn forward, ", Q, " q x 8 heads x 4 pts, 256 ch"),
        timer.ms([&] { kernels::deform_attn(value, Hm, Wm, loc, attn); }),
        timer.ms([&] { naive_deform_attn(value, Hm, Wm, loc, attn); }));
    auto fwd_bwd_attn = [&](bool bevkd) {
      const torch::Tensor v = value.detach().requires_grad_(true), l = loc.detach().requires_grad_(true),
                          a = attn.detach().requires_grad_(true);
      const torch::Tensor out = bevkd ? kernels::deform_attn(v, Hm, Wm, l, a) : naive_deform_attn(v, Hm, Wm, l, a);
      (out * dout).sum().backward();
    };
    row(cat("deform attn forward + backward, ", Q, " q"), timer.ms([&] { fwd_bwd_attn(true); }),
        timer.ms([&] { fwd_bwd_attn(false); }));
  }
}

int run(int reps, int threads) {
  if (threads > 0) at::set_num_threads(threads);
  std::printf(
      "bevkd-bench-kernels: median of %d runs after one warm-up; naive = the same computation with\n"
      "plain LibTorch ops (outer product + index_add for pooling, mmdet3d's per-box slicing for heat maps,\n"
      "per-head grid_sample for deformable attention)\n",
      reps);
  std::printf("%s", at::get_parallel_info().c_str());
  run_device(torch::kCPU, reps);
  if (kernels::cuda_available())
    run_device(torch::Device(torch::kCUDA, 0), reps);
  else
    std::printf("\nCUDA: %s\n", kernels::cuda_compiled() ? "no device visible" : "not compiled (BEVKD_WITH_CUDA=OFF)");
  return 0;
}

}  // namespace
}  // namespace bevkd

int main(int argc, char** argv) {
  CLI::App app{"bevkd-bench-kernels: kernels/ ops vs naive LibTorch implementations"};
  int reps = 10, threads = 0;
  app.add_option("--reps", reps, "timed runs per op (median reported)")->check(CLI::Range(1, 1000));
  app.add_option("--threads", threads, "intra-op threads (0: LibTorch's default)")->check(CLI::Range(0, 1024));
  CLI11_PARSE(app, argc, argv);
  return bevkd::run_main("bevkd-bench-kernels", [&] { return bevkd::run(reps, threads); });
}
