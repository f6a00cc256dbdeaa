#include "core/nuscenes/jpeg.h"

#include <turbojpeg.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::core::nusc {
namespace {

struct Handle {
  tjhandle h;
  explicit Handle(tjhandle handle) : h(handle) { BEVKD_CHECK(h != nullptr, "libturbojpeg: cannot create a handle"); }
  ~Handle() { tjDestroy(h); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

JpegInfo header(tjhandle h, std::string_view bytes, const std::string& label) {
  int w = 0, ht = 0, subsamp = 0, colorspace = 0;
  const int rc = tjDecompressHeader3(h, reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<unsigned long>(bytes.size()), &w, &ht, &subsamp, &colorspace);
  BEVKD_CHECK(rc == 0, label, ": not a readable JPEG (", tjGetErrorStr2(h), ")");
  return {w, ht};
}

}  // namespace

JpegInfo read_jpeg_info(const std::string& path) {
  BEVKD_CHECK(path_exists(path), "image file ", path, " does not exist");
  Handle h(tjInitDecompress());
  return header(h.h, read_file(path), cat("image file ", path));
}

std::vector<JpegScale> jpeg_downscale_factors() {
  int n = 0;
  const tjscalingfactor* f = tjGetScalingFactors(&n);
  std::vector<JpegScale> out;
  for (int i = 0; i < n; ++i)
    if (f[i].num <= f[i].denom) out.push_back(JpegScale{f[i].num, f[i].denom});
  std::sort(out.begin(), out.end(), [](const JpegScale& a, const JpegScale& b) { return a.value() < b.value(); });
  return out;
}

JpegInfo read_jpeg_info_bytes(std::string_view bytes, const std::string& label) {
  Handle h(tjInitDecompress());
  return header(h.h, bytes, label);
}

RgbImage decode_jpeg_bytes(std::string_view bytes, const std::string& label) {
  return decode_jpeg_bytes(bytes, label, JpegScale{1, 1});
}

RgbImage decode_jpeg_bytes(std::string_view bytes, const std::string& label, JpegScale scale) {
  RgbImage img;
  decode_jpeg_bytes_into(bytes, label, scale, &img);
  return img;
}

void decode_jpeg_bytes_into(std::string_view bytes, const std::string& label, JpegScale scale, RgbImage* out) {
  static const std::vector<JpegScale> offered = jpeg_downscale_factors();
  BEVKD_CHECK(std::find(offered.begin(), offered.end(), scale) != offered.end(), label, ": JPEG scaling factor ",
              scale.num, "/", scale.denom, " is not one libjpeg-turbo offers");
  Handle h(tjInitDecompress());
  const JpegInfo info = header(h.h, bytes, label);
  RgbImage& img = *out;
  img.width = scale.scaled(info.width);
  img.height = scale.scaled(info.height);
  img.rgb.resize(static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height) * 3);
  // tjDecompress2 picks the scaling factor from the requested size; the size computed above is
  // exactly TJSCALED(size, factor), so it picks `scale`.
  const int rc = tjDecompress2(h.h, reinterpret_cast<const unsigned char*>(bytes.data()),
                               static_cast<unsigned long>(bytes.size()), img.rgb.data(), img.width, 0, img.height,
                               TJPF_RGB, 0);
  BEVKD_CHECK(rc == 0, label, ": cannot decode JPEG (", tjGetErrorStr2(h.h), ")");
}

JpegInfo check_jpeg_bytes(std::string_view bytes, const std::string& label) {
  Handle h(tjInitDecompress());
  const JpegInfo info = header(h.h, bytes, label);
  BEVKD_CHECK(info.width > 0 && info.height > 0, label, ": JPEG header says ", info.width, "x", info.height, " pixels");
  int n = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&n);
  tjscalingfactor smallest{1, 1};
  for (int i = 0; i < n; ++i)
    if (factors[i].num * smallest.denom < smallest.num * factors[i].denom) smallest = factors[i];
  const int w = TJSCALED(info.width, smallest), ht = TJSCALED(info.height, smallest);
  std::vector<unsigned char> gray(static_cast<std::size_t>(w) * static_cast<std::size_t>(ht));
  const int rc = tjDecompress2(h.h, reinterpret_cast<const unsigned char*>(bytes.data()),
                               static_cast<unsigned long>(bytes.size()), gray.data(), w, 0, ht, TJPF_GRAY,
                               TJFLAG_STOPONWARNING);
  BEVKD_CHECK(rc == 0, label, ": the JPEG does not decode (", tjGetErrorStr2(h.h), ")");
  return info;
}

JpegInfo check_jpeg(const std::string& path) {
  BEVKD_CHECK(path_exists(path), "image file ", path, " does not exist");
  return check_jpeg_bytes(read_file(path), cat("image file ", path));
}

RgbImage decode_jpeg(const std::string& path) {
  BEVKD_CHECK(path_exists(path), "image file ", path, " does not exist");
  return decode_jpeg_bytes(read_file(path), cat("image file ", path));
}

std::string encode_jpeg(const std::uint8_t* rgb, int width, int height, int quality) {
  BEVKD_CHECK(width > 0 && height > 0, "encode_jpeg: image size ", width, "x", height, " is empty");
  BEVKD_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality ", quality, " is not in 1..100");
  Handle h(tjInitCompress());
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(h.h, rgb, width, 0, height, TJPF_RGB, &buf, &size, TJSAMP_420, quality, 0);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buf, [](unsigned char* p) { tjFree(p); });
  BEVKD_CHECK(rc == 0, "encode_jpeg: ", tjGetErrorStr2(h.h));
  return std::string(reinterpret_cast<const char*>(buf), size);
}

}  // namespace bevkd::core::nusc
