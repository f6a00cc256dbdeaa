#include "storage/array.h"

#include <cstdlib>
#include <deque>
#include <mutex>
#include <vector>
#include <cstring>
#include <new>

#include "base/error.h"
#include "storage/half.h"

namespace bevkd::storage {
namespace {

constexpr std::size_t kAlign = 64;

struct DTypeInfo {
  DType type;
  std::string_view name;
  std::size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kUInt8, "uint8", 1},     {DType::kInt8, "int8", 1},       {DType::kInt16, "int16", 2},
    {DType::kInt32, "int32", 4},     {DType::kInt64, "int64", 8},     {DType::kUInt64, "uint64", 8},
    {DType::kFloat16, "float16", 2}, {DType::kFloat32, "float32", 4}, {DType::kFloat64, "float64", 8},
    {DType::kString, "string", 0},
};

const DTypeInfo& info(DType t) {
  for (const auto& d : kDTypes)
    if (d.type == t) return d;
  BEVKD_ASSERT(false, "unknown DType ", static_cast<int>(t));
  return kDTypes[0];
}

}  // namespace

std::string_view dtype_name(DType t) { return info(t).name; }
std::size_t dtype_size(DType t) { return info(t).size; }
bool dtype_is_float(DType t) {
  return t == DType::kFloat16 || t == DType::kFloat32 || t == DType::kFloat64;
}

DType dtype_from_name(std::string_view name, std::string_view where) {
  std::string valid;
  for (const auto& d : kDTypes) {
    if (d.name == name) return d.type;
    valid += cat(valid.empty() ? "" : ", ", d.name);
  }
  BEVKD_FAIL(where, ": unknown dtype \"", name, "\" (expected one of ", valid, ")");
}

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += cat(i ? ", " : "", shape[i]);
  return s + "]";
}

std::int64_t shape_numel(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

namespace {

constexpr std::size_t kPoolMinBytes = std::size_t{1} << 20;
constexpr std::size_t kPoolMaxBytes = std::size_t{1} << 30;
constexpr std::size_t kPoolGranule = std::size_t{64} << 10;

// Recently freed large buffers, oldest first. A request takes the smallest buffer that fits
// with at most 25% to spare; when full, the oldest buffers make room, so buffers of sizes no
// longer asked for (varying ragged fields) leave the pool. At most 1024 entries (1 GiB / 1 MiB),
// so the linear scans stay cheap next to what a 1 MiB allocation costs. Leaked on purpose (no
// destruction-order issues at exit).
struct BufferPool {
  struct Entry {
    std::byte* p;
    std::size_t capacity;
  };
  std::mutex mu;
  std::deque<Entry> free;
  std::size_t bytes = 0;

  std::byte* take(std::size_t size, std::size_t* capacity) {
    std::lock_guard<std::mutex> lock(mu);
    auto best = free.end();
    for (auto it = free.begin(); it != free.end(); ++it)
      if (it->capacity >= size && it->capacity <= size + size / 4 &&
          (best == free.end() || it->capacity < best->capacity))
        best = it;
    if (best == free.end()) return nullptr;
    std::byte* p = best->p;
    *capacity = best->capacity;
    bytes -= best->capacity;
    free.erase(best);
    return p;
  }
  void give(std::byte* p, std::size_t capacity) {
    std::vector<std::byte*> evicted;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (capacity > kPoolMaxBytes) {
        evicted.push_back(p);
      } else {
        while (bytes + capacity > kPoolMaxBytes) {
          evicted.push_back(free.front().p);
          bytes -= free.front().capacity;
          free.pop_front();
        }
        free.push_back(Entry{p, capacity});
        bytes += capacity;
      }
    }
    for (std::byte* e : evicted) std::free(e);
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu);
    for (const Entry& e : free) std::free(e.p);
    free.clear();
    bytes = 0;
  }
};

BufferPool& pool() {
  static BufferPool* p = new BufferPool;
  return *p;
}

}  // namespace

void Array::FreeAligned::operator()(std::byte* p) const {
  if (capacity >= kPoolMinBytes) pool().give(p, capacity);
  else std::free(p);
}

void Array::release_pooled_buffers() { pool().clear(); }

Array::Array(DType dtype, std::vector<std::int64_t> shape, std::size_t string_length)
    : Array(dtype, std::move(shape), string_length, true) {}

Array Array::uninitialized(DType dtype, std::vector<std::int64_t> shape, std::size_t string_length) {
  return Array(dtype, std::move(shape), string_length, false);
}

Array::Array(DType dtype, std::vector<std::int64_t> shape, std::size_t string_length, bool zero)
    : dtype_(dtype), shape_(std::move(shape)) {
  for (std::int64_t d : shape_)
    BEVKD_CHECK(d >= 0, "array shape ", shape_str(shape_), " has a negative dimension");
  numel_ = shape_numel(shape_);
  if (dtype == DType::kString) {
    BEVKD_CHECK(string_length > 0, "a string array needs a string length > 0");
    itemsize_ = string_length;
  } else {
    itemsize_ = dtype_size(dtype);
  }
  // Always allocate (at least one aligned block), so raw() is never null — from_blob and
  // memcpy with zero sizes stay well defined.
  std::size_t bytes = std::max<std::size_t>(kAlign, (nbytes() + kAlign - 1) / kAlign * kAlign);
  void* p = nullptr;
  if (bytes >= kPoolMinBytes) {
    bytes = (bytes + kPoolGranule - 1) / kPoolGranule * kPoolGranule;
    p = pool().take(bytes, &bytes);
  }
  if (p == nullptr) p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) throw std::bad_alloc();
  if (zero) std::memset(p, 0, nbytes());
  buf_ = std::unique_ptr<std::byte[], FreeAligned>(static_cast<std::byte*>(p), FreeAligned{bytes});
}

Array Array::strings(std::vector<std::int64_t> shape, const std::vector<std::string>& values,
                     std::size_t length) {
  Array a(DType::kString, std::move(shape), length);
  a.check_count(static_cast<std::int64_t>(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) a.set_string(static_cast<std::int64_t>(i), values[i]);
  return a;
}

void Array::check_type(DType want) const {
  BEVKD_CHECK(want == dtype_, "array of ", describe(), " accessed as ", dtype_name(want));
}

void Array::check_count(std::int64_t n) const {
  BEVKD_CHECK(n == numel_, "array of shape ", shape_str(shape_), " needs ", numel_, " values, got ", n);
}

double Array::value_as_double(std::int64_t i) const {
  BEVKD_ASSERT(i >= 0 && i < numel_, "index ", i, " of ", numel_);
  const std::byte* p = buf_.get() + static_cast<std::size_t>(i) * itemsize_;
  auto get = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (dtype_) {
    case DType::kUInt8: return get(std::uint8_t{});
    case DType::kInt8: return get(std::int8_t{});
    case DType::kInt16: return get(std::int16_t{});
    case DType::kInt32: return get(std::int32_t{});
    case DType::kInt64: return static_cast<double>(get(std::int64_t{}));
    case DType::kUInt64: return static_cast<double>(get(std::uint64_t{}));
    case DType::kFloat16: return half_to_float(get(std::uint16_t{}));
    case DType::kFloat32: return get(float{});
    case DType::kFloat64: return get(double{});
    case DType::kString: break;
  }
  BEVKD_FAIL("array of ", describe(), " has no numeric values");
}

std::string Array::string_at(std::int64_t i) const {
  check_type(DType::kString);
  BEVKD_CHECK(i >= 0 && i < numel_, "string index ", i, " out of range for ", describe());
  const char* p = reinterpret_cast<const char*>(buf_.get()) + static_cast<std::size_t>(i) * itemsize_;
  return std::string(p, strnlen(p, itemsize_));
}

void Array::set_string(std::int64_t i, std::string_view s) {
  check_type(DType::kString);
  BEVKD_CHECK(i >= 0 && i < numel_, "string index ", i, " out of range for ", describe());
  BEVKD_CHECK(s.size() <= itemsize_, "string \"", s, "\" has ", s.size(),
              " bytes, more than the field's fixed length ", itemsize_);
  BEVKD_CHECK(s.find('\0') == std::string_view::npos, "string \"", s, "\" contains a NUL byte");
  char* p = reinterpret_cast<char*>(buf_.get()) + static_cast<std::size_t>(i) * itemsize_;
  std::memset(p, 0, itemsize_);
  std::memcpy(p, s.data(), s.size());
}

Array Array::clone() const {
  if (!buf_) return Array();
  Array a(dtype_, shape_, dtype_ == DType::kString ? itemsize_ : 0);
  std::memcpy(a.raw(), raw(), nbytes());
  a.segments = segments;
  return a;
}

bool Array::same_as(const Array& o) const {
  return dtype_ == o.dtype_ && shape_ == o.shape_ && itemsize_ == o.itemsize_ && segments == o.segments &&
         (nbytes() == 0 || std::memcmp(raw(), o.raw(), nbytes()) == 0);
}

std::string Array::describe() const {
  if (dtype_ == DType::kString) return cat("string(", itemsize_, ") ", shape_str(shape_));
  return cat(dtype_name(dtype_), " ", shape_str(shape_));
}

namespace {
std::string names_of(const std::map<std::string, Array, std::less<>>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += cat(s.empty() ? "" : ", ", k);
  return s.empty() ? "none" : s;
}
}  // namespace

const Array& Sample::get(std::string_view name) const {
  auto it = fields_.find(name);
  BEVKD_CHECK(it != fields_.end(), "sample has no field \"", name, "\" (fields: ", names_of(fields_), ")");
  return it->second;
}

Array& Sample::get(std::string_view name) {
  auto it = fields_.find(name);
  BEVKD_CHECK(it != fields_.end(), "sample has no field \"", name, "\" (fields: ", names_of(fields_), ")");
  return it->second;
}

Array Sample::take(std::string_view name) {
  auto it = fields_.find(name);
  BEVKD_CHECK(it != fields_.end(), "sample has no field \"", name, "\" (fields: ", names_of(fields_), ")");
  Array a = std::move(it->second);
  fields_.erase(it);
  return a;
}

void Sample::erase(std::string_view name) {
  auto it = fields_.find(name);
  if (it != fields_.end()) fields_.erase(it);
}

std::size_t Sample::nbytes() const {
  std::size_t n = 0;
  for (const auto& [k, v] : fields_) n += v.nbytes();
  return n;
}

Sample Sample::clone() const {
  Sample s;
  for (const auto& [k, v] : fields_) s.set(k, v.clone());
  return s;
}

}  // namespace bevkd::storage
