#include "train/probe/npy.h"

#include <sys/stat.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>

#include "base/error.h"
#include "base/fs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "train/probe/npy.cpp reads and writes little-endian data in place: a little-endian host is required"
#endif

namespace bevkd::train::probe {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr int64_t kMaxHeaderLen = int64_t{1} << 20;

// One parsed value of the header dict: a string, a boolean, or a tuple of integers.
struct HeaderValue {
  enum Kind { kString, kBool, kTuple } kind = kString;
  std::string str;
  bool boolean = false;
  std::vector<int64_t> ints;
};

// Parser for the Python dict literal numpy writes as the header.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  std::map<std::string, HeaderValue> parse() {
    std::map<std::string, HeaderValue> out;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = string_literal();
      expect(':');
      skip_space();
      HeaderValue v = value(key);
      if (!out.emplace(key, std::move(v)).second) fail("key '" + key + "' appears twice");
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}');
      break;
    }
    skip_space();
    if (i_ != s_.size()) fail("unexpected text after the closing '}'");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    BEVKD_FAIL(path_, ": invalid .npy header (", what, " at character ", i_, "): ", s_);
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string string_literal() {
    skip_space();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\') fail("escape sequences are not supported");
      out += s_[i_++];
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;
    return out;
  }
  HeaderValue value(const std::string& key) {
    HeaderValue v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = HeaderValue::kString;
      v.str = string_literal();
    } else if (s_.compare(i_, 4, "True") == 0) {
      v.kind = HeaderValue::kBool;
      v.boolean = true;
      i_ += 4;
    } else if (s_.compare(i_, 5, "False") == 0) {
      v.kind = HeaderValue::kBool;
      i_ += 5;
    } else if (c == '(') {
      v.kind = HeaderValue::kTuple;
      ++i_;
      while (true) {
        skip_space();
        if (peek() == ')') {
          ++i_;
          break;
        }
        v.ints.push_back(integer());
        skip_space();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(')');
        break;
      }
    } else if (c == '[') {
      fail("the value of '" + key + "' is a list: structured dtypes are not supported");
    } else {
      fail("unsupported value for '" + key + "'");
    }
    return v;
  }
  int64_t integer() {
    skip_space();
    if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer");
    int64_t v = 0;
    while (std::isdigit(static_cast<unsigned char>(peek()))) {
      const int d = s_[i_++] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("dimension too large");
      v = v * 10 + d;
    }
    if (peek() == 'L') ++i_;  // Python 2 long literal
    return v;
  }

  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

// Element type of a supported descr; kUndefined for anything else.
torch::ScalarType descr_type(const std::string& d) {
  if (d.size() != 3 || (d[0] != '<' && d[0] != '=' && d[0] != '|')) return torch::ScalarType::Undefined;
  const std::string t = d.substr(1);
  if (t == "f4") return torch::kFloat32;
  if (t == "f8") return torch::kFloat64;
  if (t == "i8") return torch::kInt64;
  return torch::ScalarType::Undefined;
}

uint32_t le32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t{p[3]} << 24); }

// Reads up to `n` bytes at the start of `path`.
std::string read_prefix(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  BEVKD_CHECK(in.good(), path, ": cannot open for reading (", std::strerror(errno), ")");
  std::string buf(n, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(n));
  buf.resize(static_cast<size_t>(in.gcount()));
  return buf;
}

NpyHeader parse_header(const std::string& path, const std::string& bytes, bool whole_file) {
  BEVKD_CHECK(bytes.size() >= kMagicLen + 4 && std::memcmp(bytes.data(), kMagic, kMagicLen) == 0, path,
              ": not a .npy file (it does not start with the magic string \\x93NUMPY)");
  NpyHeader h;
  h.major = static_cast<unsigned char>(bytes[6]);
  h.minor = static_cast<unsigned char>(bytes[7]);
  BEVKD_CHECK((h.major == 1 || h.major == 2 || h.major == 3) && h.minor == 0, path, ": .npy format version ", h.major,
              ".", h.minor, " is not supported (1.0, 2.0 or 3.0)");
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  int64_t len = 0, start = 0;
  if (h.major == 1) {
    len = u[8] | (u[9] << 8);
    start = 10;
  } else {
    BEVKD_CHECK(bytes.size() >= 12, path, ": truncated .npy file (", bytes.size(), " bytes, the header is incomplete)");
    len = le32(u + 8);
    start = 12;
  }
  BEVKD_CHECK(len <= kMaxHeaderLen, path, ": .npy header length ", len, " exceeds the limit of ", kMaxHeaderLen,
              " bytes");
  h.data_offset = start + len;
  if (!whole_file) return h;  // caller reads the header text next
  BEVKD_CHECK(static_cast<int64_t>(bytes.size()) >= h.data_offset, path, ": truncated .npy file (", bytes.size(),
              " bytes, the header announces ", len, " header bytes after byte ", start, ")");
  const std::string text = bytes.substr(static_cast<size_t>(start), static_cast<size_t>(len));
  const auto dict = HeaderParser(text, path).parse();
  for (const auto& [key, v] : dict)
    BEVKD_CHECK(key == "descr" || key == "fortran_order" || key == "shape", path, ": unknown key '", key,
                "' in the .npy header");
  auto need = [&](const char* key, HeaderValue::Kind kind, const char* what) -> const HeaderValue& {
    auto it = dict.find(key);
    BEVKD_CHECK(it != dict.end(), path, ": the .npy header has no '", key, "'");
    BEVKD_CHECK(it->second.kind == kind, path, ": '", key, "' in the .npy header is not ", what);
    return it->second;
  };
  h.descr = need("descr", HeaderValue::kString, "a string").str;
  h.fortran_order = need("fortran_order", HeaderValue::kBool, "True or False").boolean;
  h.shape = need("shape", HeaderValue::kTuple, "a tuple of integers").ints;
  return h;
}

}  // namespace

std::string npy_dtype_name(const std::string& descr) {
  if (descr.size() >= 3 && (descr[0] == '<' || descr[0] == '=' || descr[0] == '|' || descr[0] == '>')) {
    const std::string t = descr.substr(1);
    std::string name;
    if (t == "f2") name = "float16";
    if (t == "f4") name = "float32";
    if (t == "f8") name = "float64";
    if (t == "i1") name = "int8";
    if (t == "i2") name = "int16";
    if (t == "i4") name = "int32";
    if (t == "i8") name = "int64";
    if (t == "u1") name = "uint8";
    if (t == "u2") name = "uint16";
    if (t == "u4") name = "uint32";
    if (t == "u8") name = "uint64";
    if (t == "b1") name = "bool";
    if (!name.empty()) return descr[0] == '>' ? "big-endian " + name : name;
  }
  return "'" + descr + "'";
}

NpyHeader read_npy_header(const std::string& path) {
  struct stat st {};
  BEVKD_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot open for reading (", std::strerror(errno), ")");
  BEVKD_CHECK(S_ISREG(st.st_mode), path, ": not a regular file");
  std::string bytes = read_prefix(path, 12);
  NpyHeader h = parse_header(path, bytes, false);
  bytes = read_prefix(path, static_cast<size_t>(h.data_offset));
  return parse_header(path, bytes, true);
}

torch::Tensor read_npy(const std::string& path) {
  const NpyHeader h = read_npy_header(path);
  const torch::ScalarType type = descr_type(h.descr);
  BEVKD_CHECK(type != torch::ScalarType::Undefined, path, ": dtype ", npy_dtype_name(h.descr), " ('", h.descr,
              "') is not supported; expected float32 '<f4', float64 '<f8' or int64 '<i8'");
  BEVKD_CHECK(!h.fortran_order, path,
              ": fortran_order is True; save a C-ordered array (numpy.ascontiguousarray) instead");
  int64_t count = 1;
  for (int64_t d : h.shape) {
    BEVKD_CHECK(d == 0 || count <= std::numeric_limits<int64_t>::max() / 8 / d, path, ": shape is too large");
    count *= d;
  }
  const int64_t nbytes = count * (type == torch::kFloat32 ? 4 : 8);
  const std::string bytes = read_file(path);
  const int64_t have = static_cast<int64_t>(bytes.size()) - h.data_offset;
  BEVKD_CHECK(have >= nbytes, path, ": truncated .npy file: the header announces shape ", torch::IntArrayRef(h.shape),
              " ", npy_dtype_name(h.descr), " (", nbytes, " data bytes), the file holds ", have);
  BEVKD_CHECK(have == nbytes, path, ": .npy file has ", have - nbytes, " bytes after the ", nbytes,
              " data bytes its header announces");
  torch::Tensor t = torch::empty(h.shape, torch::TensorOptions().dtype(type));
  if (nbytes > 0) std::memcpy(t.data_ptr(), bytes.data() + h.data_offset, static_cast<size_t>(nbytes));
  return t;
}

void write_npy(const std::string& path, const torch::Tensor& t) {
  const torch::ScalarType type = t.scalar_type();
  const char* descr = type == torch::kFloat32   ? "<f4"
                      : type == torch::kFloat64 ? "<f8"
                      : type == torch::kInt64   ? "<i8"
                                                : nullptr;
  BEVKD_CHECK(descr != nullptr, path, ": cannot write a ", type, " tensor as .npy (float32, float64 or int64)");
  const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  std::string shape = "(";
  for (int64_t i = 0; i < c.dim(); ++i)
    shape += std::to_string(c.size(i)) + (c.dim() == 1 || i + 1 < c.dim() ? ", " : "");
  if (c.dim() == 1) shape.resize(shape.size() - 1);  // "(3,)"
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that magic + version + length + header ends at a multiple of 64, '\n' last.
  const size_t total = kMagicLen + 2 + 2 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  BEVKD_CHECK(header.size() <= 65535, path, ": .npy header too long for format 1.0");
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel() * c.element_size()));
  write_file_atomic(path, out);
}

}  // namespace bevkd::train::probe
