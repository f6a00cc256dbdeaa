// Points inside 3-D boxes, as the devkit's geometry_utils.points_in_box: the box's own
// rotated frame, faces inclusive. Used for num_lidar_pts / num_radar_pts (the generator) and
// for assigning LiDAR points to GT boxes (depth targets). A uniform x-y bucket grid keeps the
// cost near O(points + boxes) instead of O(points x boxes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/geometry.h"

namespace bevkd::core::nusc {

// True if p lies inside the box (full quaternion: tilted boxes work), faces included.
bool point_in_nusc_box(const NuscBox& b, const Vec3& p);

// `points`: [n, stride] float32 row-major, x, y, z (m) in the first three columns, in the same
// frame as the boxes. Returns, per box, the number of points inside it (a point inside two
// overlapping boxes counts for both).
std::vector<std::int32_t> count_points_in_boxes(const float* points, std::size_t n, std::size_t stride,
                                                const std::vector<NuscBox>& boxes);
std::vector<std::int32_t> count_points_in_boxes(const float* points, std::size_t n, std::size_t stride,
                                                const std::vector<Box>& boxes);

// Per point, the index of the first box (in `boxes` order) that contains it, or -1.
std::vector<std::int32_t> box_index_of_points(const float* points, std::size_t n, std::size_t stride,
                                              const std::vector<Box>& boxes);

}  // namespace bevkd::core::nusc
