// NumPy .npy files (the format numpy.save writes), for loss-probe's case directories.
//
// Format (numpy.lib.format, versions 1.0, 2.0 and 3.0):
//   bytes 0-5   magic "\x93NUMPY"
//   bytes 6-7   major, minor version: (1,0), (2,0) or (3,0)
//   then        header length: uint16 little-endian (1.0) or uint32 little-endian (2.0, 3.0)
//   then        the header: a Python dict literal, ASCII (1.0, 2.0) or UTF-8 (3.0), padded with
//               spaces and ending in '\n', e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   then        the data, C order, prod(shape) * itemsize bytes (shape () holds one element).
// Read: descr '<f4' (float32), '<f8' (float64), '<i8' (int64); '|' or '=' byte-order marks are
// accepted where numpy writes them for these sizes on a little-endian host. Everything else
// (big-endian, other dtypes, fortran_order True, object arrays) is refused with a message that
// names the file and what was found. Any rank, zero-length dimensions included ((0, 9)).
// Written: version 1.0, little-endian, C order, header padded so the data starts at a multiple
// of 64 bytes (as numpy >= 1.15 writes).
//
// Reads are bounded: the header is at most 1 MiB, the element count must fit in int64 and the
// file must hold exactly the data its header announces (no truncation, no trailing bytes).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bevkd::train::probe {

// What the header of a .npy file says.
struct NpyHeader {
  std::string descr;  // as written, e.g. "<f4"
  bool fortran_order = false;
  std::vector<int64_t> shape;
  int major = 1, minor = 0;  // format version
  int64_t data_offset = 0;   // first data byte
};

// The dtype name of a descr for messages: "<f4" -> "float32", "<i4" -> "int32", else the descr.
std::string npy_dtype_name(const std::string& descr);

// Parses the header of `path`. Throws bevkd::Error naming the file for a missing or unreadable
// file, a bad magic string, an unsupported version or a malformed header.
NpyHeader read_npy_header(const std::string& path);

// Reads the whole array as a CPU tensor of dtype float32, float64 or int64. Throws bevkd::Error
// naming the file for everything read_npy_header refuses, an unsupported dtype, fortran_order
// True, and a data size that disagrees with the header.
torch::Tensor read_npy(const std::string& path);

// Writes `t` (float32, float64 or int64; any device, any rank; made contiguous) to `path` in
// format 1.0, atomically (base/fs.h). Throws bevkd::Error for another dtype or an I/O failure.
void write_npy(const std::string& path, const torch::Tensor& t);

}  // namespace bevkd::train::probe
