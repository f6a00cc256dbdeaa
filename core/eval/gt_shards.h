// Ground truth from bevkd shards (DESIGN.md "Shard format (v1)"): the stored GT carries
// everything the official evaluation filters on, so metrics can be computed without the
// nuScenes tables — e.g. by bevkd-train's periodic evaluation, or `bevkd-eval --shards`.
//
// Per stored sample, in manifest shard order and sample order: gt/boxes (key-frame ego frame)
// moved to the global frame through ego2global (the LIDAR_TOP key-frame pose), labels mapped
// through the shard's class_names, gt/attributes, num_pts = num_lidar_pts + num_radar_pts,
// velocity NaN where gt/velocity_valid is 0, the ego position from ego2global, and the
// gt/rack_boxes as bicycle racks.
//
// Precision: shards store GT as float32 in the ego frame, so translations round-trip to about
// 1e-5 m and orientations lose the annotations' small pitch/roll; the metrics agree with the
// tables-based GT to about 1e-6, not to the last bit (the stored order is sample.anns order,
// so tie-breaking is the same).
#pragma once

#include <string>

#include "core/eval/eval_boxes.h"

namespace bevkd::core::eval {

// GT of every sample of `split` in the shards listed by `manifest_path` (a manifest.json or
// the directory holding it). A predefined split name (val, mini_val, ...) gives
// SplitKind::kPredefined, any other SplitKind::kCustom. Throws bevkd::Error naming the
// manifest or shard when the split has no shards, a shard's class_names contain a name that is
// not a detection class, or an attribute index is out of range.
//
// A damaged shard (it cannot be opened, or a sample's GT fails its checksum — the GT fields are
// read with checksum verification) is reported in GroundTruth::unreadable, naming the file, and
// left out with its samples; the other shards go on. The split is then evaluated as a custom
// split over the readable samples (extra result samples are ignored).
GroundTruth shard_ground_truth(const std::string& manifest_path, const std::string& split);

}  // namespace bevkd::core::eval
