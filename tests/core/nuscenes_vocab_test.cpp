#include "core/nuscenes_vocab.h"

#include <gtest/gtest.h>

#include <set>

namespace bevkd::core {
namespace {

TEST(NuscenesVocab, CategoryMappingCoversThe23Categories) {
  EXPECT_EQ(kClassNames[class_from_category("vehicle.car")], "car");
  EXPECT_EQ(kClassNames[class_from_category("vehicle.bus.bendy")], "bus");
  EXPECT_EQ(kClassNames[class_from_category("vehicle.bus.rigid")], "bus");
  EXPECT_EQ(kClassNames[class_from_category("human.pedestrian.police_officer")], "pedestrian");
  EXPECT_EQ(kClassNames[class_from_category("movable_object.trafficcone")], "traffic_cone");
  EXPECT_EQ(kClassNames[class_from_category("vehicle.construction")], "construction_vehicle");
  for (const char* ignored :
       {"animal", "human.pedestrian.personal_mobility", "human.pedestrian.stroller",
        "human.pedestrian.wheelchair", "movable_object.debris", "movable_object.pushable_pullable",
        "static_object.bicycle_rack", "vehicle.emergency.ambulance", "vehicle.emergency.police"})
    EXPECT_EQ(class_from_category(ignored), -1) << ignored;
}

TEST(NuscenesVocab, EvalOrderIsTheDevkitOrder) {
  const char* devkit[] = {"car", "truck", "bus", "trailer", "construction_vehicle",
                          "pedestrian", "motorcycle", "bicycle", "traffic_cone", "barrier"};
  std::set<int> seen;
  for (int k = 0; k < kNumClasses; ++k) {
    EXPECT_EQ(kClassNames[kEvalClassOrder[k]], devkit[k]);
    seen.insert(kEvalClassOrder[k]);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(NuscenesVocab, RangesAndAttributes) {
  EXPECT_EQ(eval_class_range(class_index("car")), 50.0);
  EXPECT_EQ(eval_class_range(class_index("bicycle")), 40.0);
  EXPECT_EQ(eval_class_range(class_index("barrier")), 30.0);
  EXPECT_EQ(default_attribute(class_index("car")), "vehicle.parked");
  EXPECT_EQ(default_attribute(class_index("traffic_cone")), "");
  EXPECT_EQ(attribute_index("pedestrian.moving"), 7);
  EXPECT_EQ(attribute_index(""), -1);
  EXPECT_TRUE(attribute_fits_class("cycle.with_rider", class_index("bicycle")));
  EXPECT_FALSE(attribute_fits_class("vehicle.moving", class_index("pedestrian")));
}

}  // namespace
}  // namespace bevkd::core
