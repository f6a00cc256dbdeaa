// Camera JPEGs of a shard sample: the stored cams/image_path resolved against the dataroot
// (DESIGN.md "Images": a path that leaves the dataroot after canonicalisation is refused) and
// decoded with libjpeg-turbo, downscaled in the DCT domain when the target scale allows it.
#pragma once

#include <cstdint>
#include <string>

#include "core/nuscenes/jpeg.h"

namespace bevkd::train::data {

// Where a sample's camera image comes from, for messages: "sample <token>, camera <name>".
struct ImageRef {
  std::string sample_token;
  std::string camera;
  std::string stored_path;  // cams/image_path as stored (relative to the dataroot)
  std::string describe() const;
};

class ImageRoot {
 public:
  // `dataroot` must be an existing directory; it is canonicalised once (symlinks resolved).
  explicit ImageRoot(const std::string& dataroot);

  const std::string& dir() const { return root_; }

  // The canonical absolute path of ref.stored_path under the dataroot. Refuses (bevkd::Error
  // naming sample, camera and the path) an empty or absolute stored path, and one whose
  // canonical form — ".." resolved, symlinks followed as far as the file system has them —
  // lies outside the dataroot, or that is a dangling symbolic link (its target cannot be
  // checked). A missing file inside the dataroot resolves: whether it exists is the caller's
  // check (a missing image may be skipped, an escaping path never is).
  std::string resolve(const ImageRef& ref) const;

 private:
  std::string root_;
};

// The smallest DCT scaling factor f >= target_scale that libjpeg-turbo offers, when
// target_scale <= 1/2 (below that the decoder's low-pass average is both faster and better than
// a full decode followed by bilinear minification); 1/1 otherwise.
core::nusc::JpegScale choose_jpeg_scale(double target_scale);

// A camera JPEG read into memory, with its size from the header.
struct CameraJpeg {
  std::string bytes;
  int width = 0, height = 0;  // original pixels
};

// Reads `path` (a resolved path) and its JPEG header. Throws bevkd::Error naming the sample,
// camera and file if it cannot be read or is not a JPEG.
CameraJpeg read_camera_jpeg(const std::string& path, const ImageRef& ref);

// A decoded camera image and the factor it was decoded at: decoded pixel
// u_dec = f (u + 1/2) - 1/2 of original pixel u (f = scale.value()).
struct DecodedImage {
  core::nusc::RgbImage image;
  core::nusc::JpegScale scale;
};

// Decodes at choose_jpeg_scale(target_scale). Throws bevkd::Error naming the sample, camera and file.
DecodedImage decode_camera_jpeg(const CameraJpeg& jpeg, double target_scale, const ImageRef& ref,
                                const std::string& path);
// The same into `out`, reusing its pixel buffer.
void decode_camera_jpeg(const CameraJpeg& jpeg, double target_scale, const ImageRef& ref, const std::string& path,
                        DecodedImage* out);

}  // namespace bevkd::train::data
