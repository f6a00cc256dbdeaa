// JPEG files of the nuScenes cameras, through libturbojpeg: header (size), decoding to RGB
// and encoding (the synthetic generator). Thread-safe: every call uses its own handle.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bevkd::core::nusc {

struct JpegInfo {
  int width = 0;   // pixels
  int height = 0;
};

// An 8-bit RGB image, row-major [height, width, 3].
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;
};

// A DCT-domain scaling factor num/denom of libjpeg-turbo's decoder: the image decodes directly to
// ceil(width * num / denom) x ceil(height * num / denom) pixels, each decoded pixel the (DCT
// low-pass) average of the denom/num x denom/num source pixels it covers — about as cheap as
// the factor's area.
struct JpegScale {
  int num = 1;
  int denom = 1;
  double value() const { return static_cast<double>(num) / denom; }
  int scaled(int size) const { return (size * num + denom - 1) / denom; }
  bool operator==(const JpegScale& o) const { return num == o.num && denom == o.denom; }
};

// The scaling factors this libjpeg-turbo offers that do not enlarge (1/8 .. 1/1), ascending.
std::vector<JpegScale> jpeg_downscale_factors();

// Reads only the JPEG header. Throws bevkd::Error naming the file if it is missing or not a JPEG.
JpegInfo read_jpeg_info(const std::string& path);
// The header of JPEG bytes; `label` names the source in error messages.
JpegInfo read_jpeg_info_bytes(std::string_view bytes, const std::string& label);
// Decodes a JPEG file to RGB. Throws bevkd::Error naming the file.
RgbImage decode_jpeg(const std::string& path);
// Checks that a JPEG file decodes completely and returns its (full-size) header: the whole
// entropy-coded stream is decoded — at 1/8 scale into gray, so every block is Huffman-decoded
// but only its DC term goes through the inverse DCT (a fraction of a full decode's cost) — and
// any libjpeg warning (premature end of data, corrupt entropy data) is an error. Throws
// bevkd::Error naming the file.
JpegInfo check_jpeg(const std::string& path);
JpegInfo check_jpeg_bytes(std::string_view bytes, const std::string& label);
// Decodes JPEG bytes; `label` names the source in error messages.
RgbImage decode_jpeg_bytes(std::string_view bytes, const std::string& label);
// Decodes JPEG bytes at a DCT scaling factor (one of jpeg_downscale_factors()).
RgbImage decode_jpeg_bytes(std::string_view bytes, const std::string& label, JpegScale scale);
// The same into `out`, reusing its buffer (a decoding thread's image of the same size every
// time: no allocation, no fresh pages).
void decode_jpeg_bytes_into(std::string_view bytes, const std::string& label, JpegScale scale, RgbImage* out);
// Encodes [height, width, 3] RGB bytes as a baseline JPEG (4:2:0, integer DCT: the same bytes
// for the same pixels on every machine).
std::string encode_jpeg(const std::uint8_t* rgb, int width, int height, int quality = 90);

}  // namespace bevkd::core::nusc
