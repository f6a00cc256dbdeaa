// JSON (de)serialisation of the detection-head configurations, for checkpoints, shards'
// manifests and configuration files. Writers emit every field; readers (core/json_config.h)
// keep defaults for absent fields and reject unknown ones.
#pragma once

#include <nlohmann/json.hpp>

#include "core/detection/center_decode.h"
#include "core/detection/center_head.h"
#include "core/detection/center_loss.h"
#include "core/json_config.h"

namespace bevkd::core::detection {

nlohmann::json to_json(const CenterHeadConfig& c);
void read_json(JsonFields f, CenterHeadConfig& c);

nlohmann::json to_json(const CenterLossConfig& c);
void read_json(JsonFields f, CenterLossConfig& c);

// The post-processing fields only: grid and tasks belong to the model and are not written.
nlohmann::json to_json(const DecodeConfig& c);
void read_json(JsonFields f, DecodeConfig& c);

}  // namespace bevkd::core::detection
