#include "core/nuscenes/data_path.h"

#include <filesystem>

#include "base/error.h"

namespace bevkd::core::nusc {

namespace fs = std::filesystem;

DataRoot::DataRoot(const std::string& dataroot) : root_(dataroot) {
  std::error_code ec;
  const fs::path c = fs::canonical(dataroot, ec);
  BEVKD_CHECK(!ec, "nuScenes dataroot ", dataroot, " cannot be resolved (", ec.message(), ")");
  canonical_ = c.string();
}

std::string DataRoot::resolve(std::string_view relative, std::string_view kind, std::string_view source) const {
  const std::string rel(relative);
  BEVKD_CHECK(!rel.empty(), source, ": the ", kind, " path is empty");
  BEVKD_CHECK(rel.find('\0') == std::string::npos, source, ": the ", kind, " path contains a NUL byte");
  const fs::path p(rel);
  BEVKD_CHECK(!p.is_absolute() && !p.has_root_name(), source, ": the ", kind, " path \"", rel,
              "\" is absolute; paths in the tables must be relative to the dataroot ", root_);
  const fs::path normal = p.lexically_normal();
  BEVKD_CHECK(normal.empty() || *normal.begin() != "..", source, ": the ", kind, " path \"", rel,
              "\" leaves the dataroot ", root_, " (its \"..\" components climb above it)");
  const fs::path full = fs::path(root_) / normal;
  // Symbolic links: the existing part of the path, with links resolved, must stay inside.
  std::error_code ec;
  const fs::path real = fs::weakly_canonical(full, ec);
  if (!ec) {
    const fs::path inside = real.lexically_relative(canonical_);
    BEVKD_CHECK(!inside.empty() && *inside.begin() != "..", source, ": the ", kind, " path \"", rel,
                "\" leaves the dataroot ", root_, " through a symbolic link (it resolves to ", real.string(), ")");
  }
  return full.string();
}

}  // namespace bevkd::core::nusc
