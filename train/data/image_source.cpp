#include "train/data/image_source.h"

#include <filesystem>
#include <system_error>
#include <vector>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::train::data {

namespace fs = std::filesystem;

std::string ImageRef::describe() const { return cat("sample ", sample_token, ", camera ", camera); }

ImageRoot::ImageRoot(const std::string& dataroot) {
  std::error_code ec;
  BEVKD_CHECK(!dataroot.empty(), "image dataroot is not set (the directory the shards' cams/image_path are relative to)");
  BEVKD_CHECK(fs::is_directory(dataroot, ec), "image dataroot ", dataroot, " is not a directory");
  const fs::path canon = fs::canonical(dataroot, ec);
  BEVKD_CHECK(!ec, "image dataroot ", dataroot, " cannot be resolved: ", ec.message());
  root_ = canon.string();
}

std::string ImageRoot::resolve(const ImageRef& ref) const {
  const fs::path rel(ref.stored_path);
  BEVKD_CHECK(!ref.stored_path.empty(), ref.describe(), ": the stored image path (cams/image_path) is empty");
  BEVKD_CHECK(!rel.is_absolute() && !rel.has_root_path(), ref.describe(), ": image path \"", ref.stored_path,
              "\" (cams/image_path) is absolute; shards store paths relative to the dataroot ", root_);
  std::error_code ec;
  const fs::path full = fs::path(root_) / rel;
  // Existing leading components are resolved (symlinks followed), the rest is normalised
  // lexically: "../" and symlinks both count.
  const fs::path canon = fs::weakly_canonical(full, ec);
  BEVKD_CHECK(!ec, ref.describe(), ": image path \"", ref.stored_path, "\" (cams/image_path) cannot be resolved under ",
              root_, ": ", ec.message());
  const fs::path inside = canon.lexically_relative(root_);
  const bool escapes = inside.empty() || inside == "." || *inside.begin() == "..";
  BEVKD_CHECK(!escapes, ref.describe(), ": image path \"", ref.stored_path,
              "\" (cams/image_path) leaves the dataroot ", root_, " (it resolves to ", canon.string(), ")");
  // weakly_canonical keeps a dangling symlink as it is (its target does not exist); where it
  // points cannot be checked, so it is refused rather than reported as a missing file.
  BEVKD_CHECK(!fs::is_symlink(fs::symlink_status(canon, ec)), ref.describe(), ": image path \"", ref.stored_path,
              "\" (cams/image_path) is a symbolic link to ", fs::read_symlink(canon, ec).string(),
              ", which does not exist");
  return canon.string();
}

core::nusc::JpegScale choose_jpeg_scale(double target_scale) {
  static const std::vector<core::nusc::JpegScale> factors = core::nusc::jpeg_downscale_factors();
  if (target_scale > 0.5) return {1, 1};
  for (const auto& f : factors)  // ascending
    if (f.value() >= target_scale) return f;
  return {1, 1};
}

CameraJpeg read_camera_jpeg(const std::string& path, const ImageRef& ref) {
  CameraJpeg j;
  try {
    j.bytes = read_file(path);
    const core::nusc::JpegInfo info = core::nusc::read_jpeg_info_bytes(j.bytes, cat("image file ", path));
    j.width = info.width;
    j.height = info.height;
  } catch (const Error& e) {
    BEVKD_FAIL(ref.describe(), ": ", e.what());
  }
  return j;
}

DecodedImage decode_camera_jpeg(const CameraJpeg& jpeg, double target_scale, const ImageRef& ref,
                                const std::string& path) {
  DecodedImage d;
  decode_camera_jpeg(jpeg, target_scale, ref, path, &d);
  return d;
}

void decode_camera_jpeg(const CameraJpeg& jpeg, double target_scale, const ImageRef& ref, const std::string& path,
                        DecodedImage* out) {
  out->scale = choose_jpeg_scale(target_scale);
  core::nusc::decode_jpeg_bytes_into(jpeg.bytes, cat(ref.describe(), ": image file ", path), out->scale, &out->image);
}

}  // namespace bevkd::train::data
