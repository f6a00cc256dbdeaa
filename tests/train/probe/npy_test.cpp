// train/probe/npy: round trips of every supported dtype and rank, hand-made headers of format
// versions 1.0/2.0/3.0, and the messages for corrupt, truncated and unsupported files.
// (numpy's own files are read in loss_golden_test.cpp.)
#include "train/probe/npy.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/error.h"
#include "base/fs.h"
#include "tests/support/expect_error.h"
#include "tests/train/probe/probe_test_util.h"

namespace bevkd::train::probe {
namespace {

std::string error_of(const std::string& path) {
  try {
    read_npy(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// A .npy file of the given version with a header dict and raw data bytes.
std::string npy_bytes(int major, const std::string& dict, const std::string& data) {
  std::string header = dict;
  const size_t prefix = major == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const uint32_t n = static_cast<uint32_t>(header.size());
  out += static_cast<char>(n & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) {
    out += static_cast<char>((n >> 16) & 0xff);
    out += static_cast<char>(n >> 24);
  }
  return out + header + data;
}

std::string float_bytes(std::initializer_list<float> v) {
  return std::string(reinterpret_cast<const char*>(std::data(v)), v.size() * sizeof(float));
}

TEST(Npy, RoundTripsEveryDtypeAndRank) {
  test::TempDir dir;
  const std::vector<torch::Tensor> tensors{
      torch::randn({2, 3, 4}),
      torch::randn({5}, torch::kFloat64),
      torch::tensor({int64_t{-7}, int64_t{1} << 50, int64_t{3}}),
      torch::zeros({0, 9}),
      torch::zeros({3, 0, 2}, torch::kFloat64),
      torch::tensor(1.25, torch::kFloat64),  // rank 0
      torch::randn({4, 6}).t(),              // non-contiguous: written in C order
  };
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string path = dir / cat("t", i, ".npy");
    write_npy(path, tensors[i]);
    const torch::Tensor back = read_npy(path);
    EXPECT_EQ(back.scalar_type(), tensors[i].scalar_type()) << i;
    EXPECT_EQ(back.sizes(), tensors[i].sizes()) << i;
    EXPECT_TRUE(torch::equal(back, tensors[i])) << i;
    const NpyHeader h = read_npy_header(path);
    EXPECT_EQ(h.major, 1);
    EXPECT_EQ(h.data_offset % 64, 0) << i;
  }
  // The header text numpy writes.
  write_npy(dir / "h.npy", torch::zeros({3}, torch::kFloat64));
  const std::string text = read_file(dir / "h.npy");
  EXPECT_NE(text.find("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"), std::string::npos);
  EXPECT_ERROR_WITH(write_npy(dir / "x.npy", torch::zeros({2}, torch::kInt32)),
                    "x.npy: cannot write a Int tensor as .npy (float32, float64 or int64)");
}

TEST(Npy, ReadsHeadersOfVersions2And3AndPythonSpellings) {
  test::TempDir dir;
  const std::string data = float_bytes({1.5f, -2.0f});
  for (int major : {1, 2, 3}) {
    const std::string path = dir / cat("v", major, ".npy");
    write_bytes(path, npy_bytes(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data));
    const torch::Tensor t = read_npy(path);
    EXPECT_TRUE(torch::equal(t, torch::tensor({1.5f, -2.0f}))) << major;
    EXPECT_EQ(read_npy_header(path).major, major);
  }
  // Double quotes, other key order, no trailing comma, Python 2 long dims.
  write_bytes(dir / "q.npy", npy_bytes(1, "{\"shape\": (1L, 2L), \"fortran_order\": False, \"descr\": \"<f4\"}", data));
  EXPECT_EQ(read_npy(dir / "q.npy").sizes(), (std::vector<int64_t>{1, 2}));
}

TEST(Npy, RefusesBrokenFilesNamingThem) {
  test::TempDir dir;
  const std::string data = float_bytes({1.5f, -2.0f});
  const std::string good = npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data);
  struct Case {
    std::string name, bytes, message;
  };
  const std::vector<Case> cases{
      {"magic", "NUMPY" + good.substr(5), "not a .npy file"},
      {"tiny", good.substr(0, 7), "not a .npy file"},
      {"version", std::string("\x93NUMPY\x04\x00", 8) + good.substr(8), "format version 4.0 is not supported"},
      {"header_cut", good.substr(0, 40), "truncated .npy file"},
      {"data_cut", good.substr(0, good.size() - 3),
       "truncated .npy file: the header announces shape [2] float32 (8 data bytes), the file holds 5"},
      {"trailing", good + "xx", "has 2 bytes after the 8 data bytes"},
      {"fortran", npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data),
       "fortran_order is True"},
      {"int32", npy_bytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data),
       "dtype int32 ('<i4') is not supported"},
      {"big", npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data),
       "dtype big-endian float32 ('>f4') is not supported"},
      {"nokey", npy_bytes(1, "{'descr': '<f4', 'shape': (2,), }", data), "has no 'fortran_order'"},
      {"extra", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': True}", data),
       "unknown key 'x'"},
      {"structured", npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", data),
       "structured dtypes are not supported"},
      {"negative", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data),
       "expected a non-negative integer"},
      {"garbage", npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", data), "invalid .npy header"},
      {"huge", npy_bytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", data),
       "shape is too large"},
  };
  for (const Case& c : cases) {
    const std::string path = dir / (c.name + ".npy");
    write_bytes(path, c.bytes);
    const std::string msg = error_of(path);
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.name << ": " << msg;
  }
  EXPECT_NE(error_of(dir / "missing.npy").find("cannot open"), std::string::npos);
  EXPECT_NE(error_of(dir.path()).find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace bevkd::train::probe
