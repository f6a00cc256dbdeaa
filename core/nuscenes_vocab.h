// nuScenes names: the 10 detection classes, the 23-category mapping, attributes, sensor
// channels and the detection-eval class ranges (spec/nuscenes.md §(a), §(d)).
#pragma once

#include <array>
#include <string_view>

namespace bevkd::core {

inline constexpr int kNumClasses = 10;

// Label ids used everywhere in bevkd (teacher heat-map channels, shard labels): the devkit's
// detection classes in mmdetection3d's order (DESIGN.md "Classes").
inline constexpr std::array<std::string_view, kNumClasses> kClassNames = {
    "car",     "truck",      "construction_vehicle", "bus",        "trailer",
    "barrier", "motorcycle", "bicycle",              "pedestrian", "traffic_cone"};

// Label id of a class name at compile time (-1 when unknown).
constexpr int class_label(std::string_view name) {
  for (int k = 0; k < kNumClasses; ++k)
    if (kClassNames[static_cast<std::size_t>(k)] == name) return k;
  return -1;
}
// The class whose yaw is periodic in pi and which has no attribute or velocity error (the devkit).
inline constexpr int kBarrierLabel = class_label("barrier");

// The devkit's class order for every per-class output of the evaluation (detection_cvpr_2019),
// as label ids into kClassNames: car, truck, bus, trailer, construction_vehicle, pedestrian,
// motorcycle, bicycle, traffic_cone, barrier.
inline constexpr std::array<int, kNumClasses> kEvalClassOrder = {0, 1, 3, 4, 2, 8, 6, 7, 9, 5};

// The 8 attribute names of the attribute table.
inline constexpr int kNumAttributes = 8;
inline constexpr std::array<std::string_view, kNumAttributes> kAttributeNames = {
    "vehicle.moving",     "vehicle.stopped",    "vehicle.parked",
    "cycle.with_rider",   "cycle.without_rider", "pedestrian.sitting_lying_down",
    "pedestrian.standing", "pedestrian.moving"};

// Camera channels in the order bevkd stores them (the order of mmdetection3d's nuScenes infos).
inline constexpr int kNumCameras = 6;
inline constexpr std::array<std::string_view, kNumCameras> kCameraChannels = {
    "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"};
inline constexpr std::array<std::string_view, 5> kRadarChannels = {
    "RADAR_FRONT", "RADAR_FRONT_LEFT", "RADAR_FRONT_RIGHT", "RADAR_BACK_LEFT", "RADAR_BACK_RIGHT"};
inline constexpr std::string_view kLidarChannel = "LIDAR_TOP";

// The category that marks bicycle racks (used by the eval's bike-rack filter).
inline constexpr std::string_view kBicycleRackCategory = "static_object.bicycle_rack";

// Label id of a detection-class name, or -1.
int class_index(std::string_view name);

// Label id of a nuScenes category name (23 categories -> 10 classes), or -1 for the ignored
// categories (animal, bicycle racks, personal mobility, ...), which are not GT boxes at all.
int class_from_category(std::string_view category);

// Index into kAttributeNames, or -1 (the empty name "" is -1 too).
int attribute_index(std::string_view name);

// The attribute mmdetection3d writes for a class when the model predicts none
// (e.g. car -> "vehicle.parked", barrier -> "").
std::string_view default_attribute(int label);

// Whether `attribute` is a valid attribute name for `label` in a results file. The devkit
// accepts any attribute for any class; this is the stricter pairing used by training code
// (vehicle.* for vehicles, cycle.* for bicycle/motorcycle, pedestrian.* for pedestrians).
bool attribute_fits_class(std::string_view attribute, int label);

// Detection-eval class range in metres (detection_cvpr_2019): 50 for vehicles, 40 for
// pedestrian/motorcycle/bicycle, 30 for traffic_cone/barrier.
double eval_class_range(int label);

}  // namespace bevkd::core
