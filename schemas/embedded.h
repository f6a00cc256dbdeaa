// The machine-readable shard layout, embedded into the binaries at build time from
// schemas/shard_v1.json (see schemas/CMakeLists.txt). storage/schema.h parses it; nothing else
// should hard-code the layout.
#pragma once

#include <string_view>

namespace bevkd::schemas {

// The exact bytes of schemas/shard_v1.json.
std::string_view shard_v1_json();

// Where the text came from, for error messages.
inline constexpr std::string_view kShardV1Source = "schemas/shard_v1.json";

}  // namespace bevkd::schemas
