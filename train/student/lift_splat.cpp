#include "train/student/lift_splat.h"

#include <torch/cuda.h>

#include <chrono>
#include <cstring>

#include "base/error.h"

namespace bevkd::train::student {
namespace {

// Milliseconds since `t0`, after the device's queued work finished.
class Stopwatch {
 public:
  explicit Stopwatch(const torch::Device& device) : device_(device) { restart(); }
  void restart() {
    sync();
    t0_ = std::chrono::steady_clock::now();
  }
  double lap_ms() {
    sync();
    const auto t1 = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(t1 - t0_).count();
    t0_ = t1;
    return ms;
  }

 private:
  void sync() const {
    if (device_.is_cuda()) torch::cuda::synchronize(device_.index());
  }
  torch::Device device_;
  std::chrono::steady_clock::time_point t0_;
};

void append_bytes(std::string& key, const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const auto n = static_cast<size_t>(c.numel()) * sizeof(float);
  const size_t at = key.size();
  key.resize(at + n);
  std::memcpy(&key[at], c.data_ptr<float>(), n);
}

}  // namespace

LiftSplat::LiftSplat(FrustumSpec spec, BevGrid grid, int64_t cache_size)
    : spec_(std::move(spec)), grid_(std::move(grid)), cache_size_(cache_size) {
  spec_.validate("lift-splat frustum");
  BEVKD_CHECK(grid_.valid(), "lift-splat: no BEV grid given");
  grid_.validate("lift-splat grid");
  BEVKD_CHECK(cache_size_ >= 0, "lift-splat: geometry cache size must be >= 0, got ", cache_size_);
  frustum_cpu_ = make_frustum(spec_);
}

const torch::Tensor& LiftSplat::frustum_on(const torch::Device& device) {
  const auto key = device.str();
  auto it = frustum_by_device_.find(key);
  if (it == frustum_by_device_.end()) it = frustum_by_device_.emplace(key, frustum_cpu_.to(device)).first;
  return it->second;
}

torch::Tensor LiftSplat::points(const torch::Tensor& intrinsics, const torch::Tensor& cam2ego, const torch::Tensor& bda,
                                const torch::Device& device) {
  return frustum_points(frustum_on(device), intrinsics, cam2ego, bda);
}

std::string LiftSplat::geometry_key(const torch::Tensor& intrinsics, const torch::Tensor& cam2ego,
                                    const torch::Tensor& bda, const torch::Device& device) {
  std::string key = device.str();
  key += '|' + std::to_string(intrinsics.size(0)) + 'x' + std::to_string(intrinsics.size(1)) + '|';
  append_bytes(key, intrinsics);
  append_bytes(key, cam2ego);
  append_bytes(key, bda);
  return key;
}

void LiftSplat::clear_cache() {
  lru_.clear();
  index_.clear();
}

const kernels::BevPoolGeometry& LiftSplat::geometry(const torch::Tensor& intrinsics, const torch::Tensor& cam2ego,
                                                    const torch::Tensor& bda, const torch::Device& device,
                                                    GeometryMode mode, LiftSplatTimings* timings) {
  const bool cached = mode == GeometryMode::kCached && cache_size_ > 0;
  std::string key;
  if (cached) {
    key = geometry_key(intrinsics, cam2ego, bda, device);
    const auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);  // most recent first
      ++hits_;
      if (timings != nullptr) {
        timings->cache_hit = true;
        timings->geometry_ms = timings->prepare_ms = 0;
      }
      return lru_.front().second;
    }
    ++misses_;
  }
  Stopwatch sw(device);
  const auto pts = points(intrinsics, cam2ego, bda, device);
  const double geometry_ms = sw.lap_ms();
  auto geom = kernels::bev_pool_prepare(pts, grid_);
  const double prepare_ms = sw.lap_ms();
  if (timings != nullptr) {
    timings->cache_hit = false;
    timings->geometry_ms = geometry_ms;
    timings->prepare_ms = prepare_ms;
  }
  if (!cached) {
    last_ = std::move(geom);
    return last_;
  }
  lru_.emplace_front(key, std::move(geom));
  index_[key] = lru_.begin();
  while (static_cast<int64_t>(lru_.size()) > cache_size_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return lru_.front().second;
}

torch::Tensor LiftSplat::forward(const torch::Tensor& depth, const torch::Tensor& context,
                                 const torch::Tensor& intrinsics, const torch::Tensor& cam2ego,
                                 const torch::Tensor& bda, GeometryMode mode, LiftSplatTimings* timings) {
  const int64_t D = spec_.bins.count(), h = spec_.feat_height(), w = spec_.feat_width();
  BEVKD_CHECK(depth.dim() == 5 && depth.size(2) == D && depth.size(3) == h && depth.size(4) == w,
              "lift-splat: depth must be [B, N, ", D, ", ", h, ", ", w, "], got ", depth.sizes());
  BEVKD_CHECK(context.dim() == 5 && context.size(0) == depth.size(0) && context.size(1) == depth.size(1) &&
                  context.size(3) == h && context.size(4) == w,
              "lift-splat: context must be [", depth.size(0), ", ", depth.size(1), ", C, ", h, ", ", w, "], got ",
              context.sizes());
  BEVKD_CHECK(intrinsics.dim() == 4 && intrinsics.size(0) == depth.size(0) && intrinsics.size(1) == depth.size(1),
              "lift-splat: intrinsics must be [", depth.size(0), ", ", depth.size(1), ", 3, 3], got ",
              intrinsics.sizes());
  const auto& geom = geometry(intrinsics, cam2ego, bda, depth.device(), mode, timings);
  Stopwatch sw(depth.device());
  // bev_pool wants one dtype (float32, or float64 for both) and channel-last features [B, N, h, w, C];
  // under autocast the context arrives in half precision while the softmax stays float32.
  const bool f64 = depth.scalar_type() == torch::kFloat64 && context.scalar_type() == torch::kFloat64;
  const auto dt = f64 ? torch::kFloat64 : torch::kFloat32;
  auto out = kernels::bev_pool(depth.to(dt).contiguous(), context.to(dt).permute({0, 1, 3, 4, 2}).contiguous(), geom);
  if (timings != nullptr) {
    timings->pool_ms = sw.lap_ms();
    timings->kept_points = geom.num_kept();
  }
  return out;
}

}  // namespace bevkd::train::student
