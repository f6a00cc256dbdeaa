#include "core/nuscenes_vocab.h"

#include <utility>

#include "base/error.h"

namespace bevkd::core {

int class_index(std::string_view name) {
  for (int k = 0; k < kNumClasses; ++k)
    if (kClassNames[k] == name) return k;
  return -1;
}

int class_from_category(std::string_view category) {
  static constexpr std::pair<std::string_view, std::string_view> kMap[] = {
      {"movable_object.barrier", "barrier"},
      {"vehicle.bicycle", "bicycle"},
      {"vehicle.bus.bendy", "bus"},
      {"vehicle.bus.rigid", "bus"},
      {"vehicle.car", "car"},
      {"vehicle.construction", "construction_vehicle"},
      {"vehicle.motorcycle", "motorcycle"},
      {"human.pedestrian.adult", "pedestrian"},
      {"human.pedestrian.child", "pedestrian"},
      {"human.pedestrian.construction_worker", "pedestrian"},
      {"human.pedestrian.police_officer", "pedestrian"},
      {"movable_object.trafficcone", "traffic_cone"},
      {"vehicle.trailer", "trailer"},
      {"vehicle.truck", "truck"},
  };
  for (const auto& [cat, cls] : kMap)
    if (cat == category) return class_index(cls);
  return -1;
}

int attribute_index(std::string_view name) {
  for (int k = 0; k < kNumAttributes; ++k)
    if (kAttributeNames[k] == name) return k;
  return -1;
}

std::string_view default_attribute(int label) {
  BEVKD_ASSERT(label >= 0 && label < kNumClasses, "label ", label);
  const std::string_view name = kClassNames[label];
  if (name == "car" || name == "truck" || name == "construction_vehicle" || name == "trailer")
    return "vehicle.parked";
  if (name == "bus") return "vehicle.moving";
  if (name == "motorcycle" || name == "bicycle") return "cycle.without_rider";
  if (name == "pedestrian") return "pedestrian.moving";
  return "";
}

bool attribute_fits_class(std::string_view attribute, int label) {
  BEVKD_ASSERT(label >= 0 && label < kNumClasses, "label ", label);
  if (attribute.empty()) return true;
  const std::string_view name = kClassNames[label];
  auto starts = [&](std::string_view p) { return attribute.substr(0, p.size()) == p; };
  if (name == "pedestrian") return starts("pedestrian.");
  if (name == "motorcycle" || name == "bicycle") return starts("cycle.");
  if (name == "barrier" || name == "traffic_cone") return false;
  return starts("vehicle.");
}

double eval_class_range(int label) {
  BEVKD_ASSERT(label >= 0 && label < kNumClasses, "label ", label);
  const std::string_view name = kClassNames[label];
  if (name == "pedestrian" || name == "motorcycle" || name == "bicycle") return 40.0;
  if (name == "traffic_cone" || name == "barrier") return 30.0;
  return 50.0;
}

}  // namespace bevkd::core
