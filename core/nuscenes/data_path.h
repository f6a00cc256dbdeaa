// Paths from the tables (sample_data.filename of LiDAR sweeps, radar scans and camera images,
// map.filename) are relative to the dataroot. A table can say anything, so before a file is
// read its path is resolved against the dataroot and refused when it leaves it:
//   * an absolute path ("/etc/passwd"),
//   * a path whose ".." components climb above the dataroot ("../../x", "samples/../../x"),
//   * a path that reaches outside through a symbolic link (the dataroot itself may be a link).
// The dataroot is canonicalised once; each file's existing prefix is canonicalised when it is
// resolved (a few lstat calls), so a link anywhere on the way is followed and checked.
#pragma once

#include <string>
#include <string_view>

namespace bevkd::core::nusc {

class DataRoot {
 public:
  // Throws bevkd::Error if `dataroot` does not exist.
  explicit DataRoot(const std::string& dataroot);

  const std::string& path() const { return root_; }            // as given
  const std::string& canonical() const { return canonical_; }  // symbolic links resolved

  // The file `relative` (from a table) as dataroot + "/" + relative, after the checks above.
  // `kind` ("LiDAR", "radar", "camera", "map") and `source` (the table record that names it,
  // e.g. "<dataroot>/v1.0-mini/sample_data.json record 12 (token \"abc\"), field \"filename\"")
  // go into the bevkd::Error that refuses it.
  std::string resolve(std::string_view relative, std::string_view kind, std::string_view source) const;

 private:
  std::string root_;
  std::string canonical_;
};

}  // namespace bevkd::core::nusc
