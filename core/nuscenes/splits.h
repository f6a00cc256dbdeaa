// nuScenes splits (spec/nuscenes.md §(e)): the devkit's predefined scene lists and custom
// splits from <dataroot>/<version>/splits.json.
//
// The predefined lists are those of nuscenes-devkit's python-sdk/nuscenes/utils/splits.py:
// train (700 scenes, = sorted(set(train_detect + train_track))), val (150), test (150),
// mini_train (8), mini_val (2), train_detect (350) and train_track (350). Like the devkit's
// evaluation loader, a predefined split checks the version string: train, val, train_detect and
// train_track need a version ending in "trainval", mini_train and mini_val one ending in "mini",
// test one ending in "test". Any other split name is looked up in splits.json
// ({"split_name": ["scene-xxxx", ...], ...}) without a version check.
#pragma once

#include <string>
#include <vector>

namespace bevkd::core::nusc {

// The names of the predefined splits: train, val, test, mini_train, mini_val, train_detect,
// train_track.
const std::vector<std::string>& predefined_split_names();
bool is_predefined_split(const std::string& split);

// The scene names of a predefined split in the devkit's order. Throws bevkd::Error for an
// unknown name. No version check (see split_scene_names()).
const std::vector<std::string>& predefined_split_scenes(const std::string& split);

// Throws bevkd::Error if `version` does not fit the predefined `split` (see the file comment),
// e.g. "split mini_val needs a nuScenes version ending in 'mini', found v1.0-trainval".
void check_split_version(const std::string& split, const std::string& version);

// The scene names of `split`: a predefined split (after check_split_version) or a custom one
// from <dataroot>/<version>/splits.json. Throws bevkd::Error naming the file when splits.json
// is missing, malformed, lacks the split, or the split is not a list of strings.
std::vector<std::string> split_scene_names(const std::string& split, const std::string& dataroot,
                                           const std::string& version);

}  // namespace bevkd::core::nusc
