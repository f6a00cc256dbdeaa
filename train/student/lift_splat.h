// Lift-splat (Philion & Fidler 2020; BEVDepth's voxel pooling): every frustum sample of every
// camera carries depth[d] x context (the outer product of the depth distribution and the context
// features of its feature cell) and is summed into the BEV cell it falls in, through
// kernels/bev_pool (BEVPoolv2: the sample -> cell mapping is prepared once per geometry).
//
// Geometry policy:
//  * training (GeometryMode::kPerBatch): bev_pool_prepare runs for every batch, since image
//    augmentation (A) and the view's bda change the frustum of every sample;
//  * evaluation (GeometryMode::kCached): prepared geometries are kept in an LRU cache of
//    `cache_size` entries. The key is the exact bytes (float32, row-major, on the CPU) of the
//    batch's intrinsics (A K) [B, N, 3, 3], cam2ego [B, N, 4, 4] and bda [B, 3, 3] plus B, N and
//    the device: with the frustum (image size, stride, depth bins) and the grid fixed per
//    LiftSplat, these determine every frustum point, so equal keys mean equal geometries. A
//    nuScenes rig keeps its calibration for a whole log and evaluation uses no augmentation, so
//    consecutive batches of one car share one entry. No hashing shortcut: keys are compared in
//    full (a few hundred bytes).
//
// Thread safety: one LiftSplat per model replica; forward() is not re-entrant.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <string>
#include <utility>

#include "base/bev_grid.h"
#include "kernels/bev_pool.h"
#include "train/student/frustum.h"

namespace bevkd::train::student {

enum class GeometryMode { kPerBatch, kCached };

// Wall-clock milliseconds of the lift-splat steps (CUDA work synchronised before each reading).
struct LiftSplatTimings {
  double geometry_ms = 0;   // frustum -> ego points (frustum_points); 0 on a cache hit
  double prepare_ms = 0;    // bev_pool_prepare; 0 on a cache hit
  double pool_ms = 0;       // bev_pool (the outer product is fused into the pooling)
  bool cache_hit = false;
  int64_t kept_points = 0;  // frustum samples inside the grid
};

class LiftSplat {
 public:
  LiftSplat(FrustumSpec spec, BevGrid grid, int64_t cache_size);

  // depth:   [B, N, D, h, w] float32, the per-cell depth distribution (softmax over D);
  // context: [B, N, C, h, w] float32 context features (other floating dtypes are pooled in
  //          float32; float64 when both are float64);
  // intrinsics [B, N, 3, 3] (A K), cam2ego [B, N, 4, 4], bda [B, 3, 3] float32 (train/data/batch.h).
  // Returns [B, C, H, W] float32 (float64) on the grid (row <-> y, column <-> x), differentiable in depth and
  // context. `timings` (optional) is filled.
  torch::Tensor forward(const torch::Tensor& depth, const torch::Tensor& context, const torch::Tensor& intrinsics,
                        const torch::Tensor& cam2ego, const torch::Tensor& bda, GeometryMode mode,
                        LiftSplatTimings* timings = nullptr);

  // The prepared geometry for these cameras (intrinsics [B, N, 3, 3], cam2ego [B, N, 4, 4], bda
  // [B, 3, 3], float32, any device) on `device`, prepared now or taken from the cache per `mode`.
  // The reference stays valid until the next call.
  const kernels::BevPoolGeometry& geometry(const torch::Tensor& intrinsics, const torch::Tensor& cam2ego,
                                           const torch::Tensor& bda, const torch::Device& device, GeometryMode mode,
                                           LiftSplatTimings* timings = nullptr);
  // [B, N, D, h, w, 3] float32 ego-of-the-view points of the frustum samples on `device`.
  torch::Tensor points(const torch::Tensor& intrinsics, const torch::Tensor& cam2ego, const torch::Tensor& bda,
                       const torch::Device& device);

  // The cache key described above (same tensors as geometry()).
  static std::string geometry_key(const torch::Tensor& intrinsics, const torch::Tensor& cam2ego,
                                  const torch::Tensor& bda, const torch::Device& device);

  const FrustumSpec& spec() const { return spec_; }
  const BevGrid& grid() const { return grid_; }
  int64_t cache_entries() const { return static_cast<int64_t>(lru_.size()); }
  int64_t cache_hits() const { return hits_; }
  int64_t cache_misses() const { return misses_; }
  void clear_cache();

 private:
  const torch::Tensor& frustum_on(const torch::Device& device);

  FrustumSpec spec_;
  BevGrid grid_;
  int64_t cache_size_;
  torch::Tensor frustum_cpu_;                       // [D, h, w, 3] float64
  std::map<std::string, torch::Tensor> frustum_by_device_;
  kernels::BevPoolGeometry last_;                   // the per-batch geometry of the last call
  using Entry = std::pair<std::string, kernels::BevPoolGeometry>;
  std::list<Entry> lru_;                            // most recent first
  std::map<std::string, std::list<Entry>::iterator> index_;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace bevkd::train::student
