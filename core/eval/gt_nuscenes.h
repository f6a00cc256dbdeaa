// Ground truth from a nuScenes dataroot: a thin adapter over core/nuscenes' tables
// (spec/nuscenes.md §(d) "GT loading"), the devkit's load_gt plus what its filters read:
//  * samples of the split in sample-table order (predefined splits with the devkit's version
//    check; any other name from <dataroot>/<version>/splits.json; or an explicit scene list);
//  * per sample its annotations in sample.anns order, mapped to the 10 classes (the other 13
//    categories are not GT at all), attribute = the single attribute's name or "" (two or more
//    is an error, as in the devkit), num_pts = num_lidar_pts + num_radar_pts, velocity by the
//    devkit's box_velocity rule (x-y, global), score -1;
//  * the LIDAR_TOP key-frame ego position and the sample's static_object.bicycle_rack boxes.
#pragma once

#include <string>
#include <vector>

#include "core/eval/eval_boxes.h"
#include "core/nuscenes/tables.h"

namespace bevkd::core::eval {

// GT of a split: predefined (train, val, test, mini_train, mini_val, train_detect, train_track;
// SplitKind::kPredefined) or custom (from splits.json; SplitKind::kCustom). Throws bevkd::Error
// for an unknown split, a version that does not fit it, a split without samples, the test split
// without annotations, or an annotation with more than one attribute.
GroundTruth nuscenes_ground_truth(const nusc::NuScenes& db, const std::string& split);

// GT of the samples of the named scenes (a custom split, SplitKind::kCustom). Unknown scene
// names are an error.
GroundTruth nuscenes_ground_truth_of_scenes(const nusc::NuScenes& db, const std::vector<std::string>& scenes);

}  // namespace bevkd::core::eval
