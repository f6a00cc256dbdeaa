// Plain host arrays and samples: what the shard writer takes and the shard reader returns.
//
// An Array is a dense, row-major, 64-byte-aligned buffer with a dtype and a shape — what
// train/ wraps with torch::from_blob (keep the Array alive while the tensor is used, or copy).
// float16 elements are stored as their IEEE binary16 bits (std::uint16_t; see storage/half.h).
// Strings are fixed-length byte strings (NUL-padded), one per element.
//
// A ragged field's Array holds the sample's rows, [rows, ...row shape], and `segments` lists
// how many of them belong to each sub-unit of the sample: V entries for per-(sample, view)
// groups, CAM entries for per-(sample, camera) groups, one entry for per-sample groups.
//
// A Sample maps dataset names ("teacher/features/neck", "gt/boxes", ...) to Arrays.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace bevkd::storage {

enum class DType : std::uint8_t {
  kUInt8,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt64,
  kFloat16,  // IEEE binary16, held as std::uint16_t bits
  kFloat32,
  kFloat64,
  kString,   // fixed-length byte string; the length is per Array
};

// "uint8", "int8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64", "string".
std::string_view dtype_name(DType t);
// Inverse of dtype_name; throws bevkd::Error naming `where` and listing the valid names.
DType dtype_from_name(std::string_view name, std::string_view where);
// Element size in bytes (0 for kString: its size is the Array's string length).
std::size_t dtype_size(DType t);
bool dtype_is_float(DType t);

// The DType of a C++ element type (std::uint16_t means float16 bits here).
template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::kUInt8; }
template <> constexpr DType dtype_of<std::int8_t>() { return DType::kInt8; }
template <> constexpr DType dtype_of<std::int16_t>() { return DType::kInt16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::kInt32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::kInt64; }
template <> constexpr DType dtype_of<std::uint64_t>() { return DType::kUInt64; }
template <> constexpr DType dtype_of<std::uint16_t>() { return DType::kFloat16; }
template <> constexpr DType dtype_of<float>() { return DType::kFloat32; }
template <> constexpr DType dtype_of<double>() { return DType::kFloat64; }

// "[12, 384, 128, 128]"
std::string shape_str(const std::vector<std::int64_t>& shape);
// Product of the dimensions (1 for a scalar shape []).
std::int64_t shape_numel(const std::vector<std::int64_t>& shape);

class Array {
 public:
  Array() = default;
  // A zero-filled array. For kString, `string_length` (> 0) is the byte length of each element.
  Array(DType dtype, std::vector<std::int64_t> shape, std::size_t string_length = 0);

  // Like the constructor, but the contents are left undefined (no zero fill): for readers that
  // overwrite every byte, so a 12 MB teacher tensor is not written twice.
  static Array uninitialized(DType dtype, std::vector<std::int64_t> shape, std::size_t string_length = 0);
  // An array of `shape` holding `values` (row-major; values.size() must equal the numel).
  template <typename T>
  static Array of(std::vector<std::int64_t> shape, const std::vector<T>& values);
  // A scalar (shape []).
  template <typename T>
  static Array scalar(T value) { return of<T>({}, {value}); }
  // Fixed-length strings: each value NUL-padded to `length` bytes (longer values throw).
  static Array strings(std::vector<std::int64_t> shape, const std::vector<std::string>& values,
                       std::size_t length);

  DType dtype() const { return dtype_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t dim(std::size_t i) const { return shape_.at(i); }
  std::int64_t numel() const { return numel_; }
  // Bytes per element (the string length for kString).
  std::size_t itemsize() const { return itemsize_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * itemsize_; }
  bool empty() const { return numel_ == 0; }

  void* raw() { return buf_.get(); }
  const void* raw() const { return buf_.get(); }
  std::byte* bytes() { return buf_.get(); }
  const std::byte* bytes() const { return buf_.get(); }
  // Typed access; throws bevkd::Error if T does not match the dtype (std::uint16_t for float16).
  template <typename T>
  T* data() {
    check_type(dtype_of<T>());
    return reinterpret_cast<T*>(buf_.get());
  }
  template <typename T>
  const T* data() const {
    check_type(dtype_of<T>());
    return reinterpret_cast<const T*>(buf_.get());
  }
  // Any dtype as double (float16 decoded); for statistics and tests. Not for kString.
  double value_as_double(std::int64_t flat_index) const;

  // kString element i (trailing NUL padding removed) and its setter (throws if too long).
  std::string string_at(std::int64_t i) const;
  void set_string(std::int64_t i, std::string_view s);

  // Buffers of 1 MiB and more are recycled through a process-wide pool (at most 1 GiB), so
  // a stream of same-sized teacher tensors does not page-fault fresh memory for every sample
  // (which also serialises decoding threads on the kernel's memory map lock). This frees the
  // pooled buffers.
  static void release_pooled_buffers();
  // A deep copy (Arrays are move-only so that big buffers are never copied by accident).
  Array clone() const;
  // Same dtype, shape, bytes and segments.
  bool same_as(const Array& o) const;
  // "float16 [1, 384, 128, 128]" (strings: "string(32) [6]").
  std::string describe() const;

  // Ragged fields only: rows of each segment (see the header comment); empty otherwise.
  std::vector<std::int64_t> segments;

 private:
  // Returns the buffer to the large-buffer pool (see array.cpp) or to the system.
  struct FreeAligned {
    FreeAligned() noexcept : capacity(0) {}
    explicit FreeAligned(std::size_t c) noexcept : capacity(c) {}
    std::size_t capacity;
    void operator()(std::byte* p) const;
  };
  Array(DType dtype, std::vector<std::int64_t> shape, std::size_t string_length, bool zero);
  void check_type(DType want) const;
  void check_count(std::int64_t n) const;  // throws unless n == numel()

  DType dtype_ = DType::kFloat32;
  std::vector<std::int64_t> shape_;
  std::int64_t numel_ = 0;
  std::size_t itemsize_ = 0;
  std::unique_ptr<std::byte[], FreeAligned> buf_;
};

// Named arrays of one sample. Names are dataset paths of the shard schema.
class Sample {
 public:
  void set(std::string name, Array a) { fields_[std::move(name)] = std::move(a); }
  bool has(std::string_view name) const { return fields_.find(name) != fields_.end(); }
  // Throws bevkd::Error naming the field and the fields present.
  const Array& get(std::string_view name) const;
  Array& get(std::string_view name);
  // Removes and returns a field (throws like get()).
  Array take(std::string_view name);
  void erase(std::string_view name);
  const std::map<std::string, Array, std::less<>>& fields() const { return fields_; }
  std::size_t size() const { return fields_.size(); }
  std::size_t nbytes() const;
  Sample clone() const;

 private:
  std::map<std::string, Array, std::less<>> fields_;
};

template <typename T>
Array Array::of(std::vector<std::int64_t> shape, const std::vector<T>& values) {
  Array a(dtype_of<T>(), std::move(shape));
  a.check_count(static_cast<std::int64_t>(values.size()));
  if (!values.empty()) std::copy(values.begin(), values.end(), a.data<T>());
  return a;
}

}  // namespace bevkd::storage
