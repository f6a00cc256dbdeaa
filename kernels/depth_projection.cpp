#include "kernels/depth_projection.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#include "kernels/detail/check.h"
#include "kernels/detail/projection_math.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

constexpr const char* kProjectDepthOp = "project_depth";

detail::ProjectionParams make_params(const DepthProjectionOptions& o) {
  BEVKD_CHECK(o.image_height >= 1 && o.image_width >= 1 && o.image_height <= 65536 && o.image_width <= 65536, kProjectDepthOp,
              ": the image must be 1..65536 pixels on each side, found ", o.image_width, " x ", o.image_height);
  BEVKD_CHECK(o.stride >= 1, kProjectDepthOp, ": stride must be >= 1, found ", o.stride);
  BEVKD_CHECK(std::isfinite(o.min_depth) && o.min_depth > 0, kProjectDepthOp, ": min_depth must be positive, found ", o.min_depth);
  BEVKD_CHECK(o.max_depth > o.min_depth, kProjectDepthOp, ": max_depth (", o.max_depth, ") must exceed min_depth (", o.min_depth,
              ")");
  detail::ProjectionParams p{};
  p.image_w = static_cast<int32_t>(o.image_width);
  p.image_h = static_cast<int32_t>(o.image_height);
  p.stride = static_cast<int32_t>(o.stride);
  p.out_w = static_cast<int32_t>(o.out_width());
  p.out_h = static_cast<int32_t>(o.out_height());
  p.min_depth = o.min_depth;
  p.max_depth = o.max_depth;
  return p;
}

// cam2ego [Ncam, 4, 4] and intrinsics [Ncam, 3, 3] -> one detail::Camera per camera.
std::vector<detail::Camera> make_cameras(const torch::Tensor& cam2ego, const torch::Tensor& intrinsics) {
  const torch::Tensor e = cam2ego.to(torch::kCPU, torch::kFloat64).contiguous();
  const torch::Tensor k = intrinsics.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* ep = e.data_ptr<double>();
  const double* kp = k.data_ptr<double>();
  std::vector<detail::Camera> cams(e.size(0));
  for (size_t n = 0; n < cams.size(); ++n) {
    const double* m = ep + 16 * n;
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) cams[n].R[3 * r + c] = m[4 * r + c];
      cams[n].t[r] = m[4 * r + 3];
    }
    for (int i = 0; i < 9; ++i) cams[n].K[i] = kp[9 * n + i];
    for (int i = 0; i < 16; ++i)
      BEVKD_CHECK(std::isfinite(m[i]), kProjectDepthOp, ": cam2ego[", n, "] has a non-finite entry ", m[i]);
    for (int i = 0; i < 9; ++i)
      BEVKD_CHECK(std::isfinite(cams[n].K[i]), kProjectDepthOp, ": intrinsics[", n, "] has a non-finite entry ", cams[n].K[i]);
  }
  return cams;
}

// The dense per-cell result on either device: depth, box id, the kept point's (u, v, depth),
// and whether a point was kept.
struct Cells {
  torch::Tensor depth, box_id, uvd, valid;
};

Cells resolve_cpu(const torch::Tensor& points, const std::vector<detail::Camera>& cams, const torch::Tensor& boxes,
                  const detail::ProjectionParams& p) {
  const int64_t P = points.size(0), F = points.size(1), Ncam = static_cast<int64_t>(cams.size());
  const int64_t per_cam = int64_t{p.out_h} * p.out_w, total = Ncam * per_cam;
  const float* pts = points.data_ptr<float>();
  std::unique_ptr<std::atomic<uint64_t>[]> keys(new std::atomic<uint64_t>[total]);
  for (int64_t i = 0; i < total; ++i) keys[i].store(detail::kNoDepthKey, std::memory_order_relaxed);

  at::parallel_for(0, P, 4096, [&](int64_t p0, int64_t p1) {
    for (int64_t i = p0; i < p1; ++i) {
      const float* q = pts + i * F;
      for (int64_t n = 0; n < Ncam; ++n) {
        float u, v, d;
        int32_t cell;
        if (!detail::project_to_camera(cams[n], p, q[0], q[1], q[2], &u, &v, &d, &cell)) continue;
        const uint64_t key = detail::depth_key(d, static_cast<uint32_t>(i));
        std::atomic<uint64_t>& slot = keys[n * per_cam + cell];
        uint64_t cur = slot.load(std::memory_order_relaxed);
        while (key < cur && !slot.compare_exchange_weak(cur, key, std::memory_order_relaxed)) {
        }
      }
    }
  });

  Cells out;
  out.depth = torch::zeros({Ncam, p.out_h, p.out_w}, torch::kFloat32);
  out.box_id = torch::full({Ncam, p.out_h, p.out_w}, -1, torch::kInt32);
  out.uvd = torch::zeros({Ncam, p.out_h, p.out_w, 3}, torch::kFloat32);
  out.valid = torch::zeros({Ncam, p.out_h, p.out_w}, torch::kBool);
  float* dp = out.depth.data_ptr<float>();
  int32_t* bp = out.box_id.data_ptr<int32_t>();
  float* up = out.uvd.data_ptr<float>();
  bool* vp = out.valid.data_ptr<bool>();
  const int64_t G = boxes.defined() ? boxes.size(0) : 0, S = boxes.defined() ? boxes.size(1) : 0;
  const float* bx = G > 0 ? boxes.data_ptr<float>() : nullptr;
  at::parallel_for(0, total, 1024, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const uint64_t key = keys[c].load(std::memory_order_relaxed);
      if (key == detail::kNoDepthKey) continue;
      const bool ok = detail::resolve_depth_cell(pts, F, cams.data(), p, key, bx, G, S, c, dp, bp, up, vp);
      BEVKD_ASSERT(ok, "depth projection of cell ", c, " is not reproducible");
    }
  });
  return out;
}

Cells resolve(const torch::Tensor& points, const torch::Tensor& cam2ego, const torch::Tensor& intrinsics,
              const torch::Tensor& boxes, const DepthProjectionOptions& opts) {
  detail::check_arg(
      points.defined() && points.dim() == 2 && points.size(1) >= 3 && points.scalar_type() == torch::kFloat32, kProjectDepthOp,
      "points", "[P, >= 3] float32 (x, y, z first, ego frame)", points);
  BEVKD_CHECK(points.size(0) < (int64_t{1} << 32), kProjectDepthOp, ": ", points.size(0), " points, more than 2^32 - 1");
  detail::check_arg(cam2ego.defined() && cam2ego.dim() == 3 && cam2ego.size(0) >= 1 && cam2ego.size(1) == 4 &&
                        cam2ego.size(2) == 4 && detail::is_float(cam2ego),
                    kProjectDepthOp, "cam2ego", "[Ncam >= 1, 4, 4] float32/float64", cam2ego);
  detail::check_arg(intrinsics.defined() && intrinsics.dim() == 3 && intrinsics.size(0) == cam2ego.size(0) &&
                        intrinsics.size(1) == 3 && intrinsics.size(2) == 3 && detail::is_float(intrinsics),
                    kProjectDepthOp, "intrinsics", "[Ncam, 3, 3] float32/float64 with Ncam = cam2ego.size(0)", intrinsics);
  detail::check_same_device(kProjectDepthOp, "points", points, "cam2ego", cam2ego);
  detail::check_same_device(kProjectDepthOp, "points", points, "intrinsics", intrinsics);
  if (boxes.defined()) {
    detail::check_arg(
        boxes.dim() == 2 && (boxes.size(1) == 7 || boxes.size(1) == 9) && boxes.scalar_type() == torch::kFloat32, kProjectDepthOp,
        "boxes", "undefined or [G, 7|9] float32 (ego frame, Box convention)", boxes);
    detail::check_same_device(kProjectDepthOp, "points", points, "boxes", boxes);
  }
  const detail::ProjectionParams p = make_params(opts);
  const std::vector<detail::Camera> cams = make_cameras(cam2ego, intrinsics);
  const torch::Tensor pts = points.contiguous();
  const torch::Tensor bx = boxes.defined() ? boxes.contiguous() : boxes;
  if (pts.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    static_assert(sizeof(detail::Camera) == 21 * sizeof(double), "Camera must be 21 packed doubles");
    const torch::Tensor cam_tensor = torch::from_blob(const_cast<detail::Camera*>(cams.data()),
                                                      {static_cast<int64_t>(cams.size()), 21}, torch::kFloat64)
                                         .to(pts.device());
    auto r = cuda::depth_resolve(pts, cam_tensor, bx, p);
    return {r[0], r[1], r[2], r[3]};
#else
    detail::fail_no_cuda(kProjectDepthOp, pts);
#endif
  }
  return resolve_cpu(pts, cams, bx, p);
}

}  // namespace

SparseDepth project_depth_sparse(const torch::Tensor& points, const torch::Tensor& cam2ego,
                                 const torch::Tensor& intrinsics, const torch::Tensor& boxes,
                                 const DepthProjectionOptions& opts) {
  const Cells c = resolve(points, cam2ego, intrinsics, boxes, opts);
  const int64_t Ncam = c.valid.size(0);
  const torch::Tensor idx = c.valid.flatten().nonzero().squeeze(1);
  SparseDepth out;
  out.uvd = c.uvd.view({-1, 3}).index_select(0, idx);
  out.box_id = c.box_id.flatten().index_select(0, idx);
  const torch::Tensor counts = c.valid.view({Ncam, -1}).sum(1, false, torch::kInt64);
  out.offsets = torch::cat({torch::zeros({1}, counts.options()), counts.cumsum(0)});
  return out;
}

DenseDepth project_depth_dense(const torch::Tensor& points, const torch::Tensor& cam2ego,
                               const torch::Tensor& intrinsics, const torch::Tensor& boxes,
                               const DepthProjectionOptions& opts) {
  const Cells c = resolve(points, cam2ego, intrinsics, boxes, opts);
  return {c.depth, c.box_id};
}

}  // namespace bevkd::kernels
