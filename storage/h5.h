// Internal helpers around the HDF5 C API for the shard writer and reader (not a public header of
// bevkd_storage: nothing outside storage/ should talk to HDF5 directly).
//
// HDF5 here is a thread-safe build: every API call takes the library's global lock, and the
// error stack and its auto-printing are per thread. Call h5::enter() at the top of every
// function that calls HDF5 so that the calling thread never prints HDF5's own error dump and
// the zstd filter is registered.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/array.h"

namespace bevkd::storage::h5 {

// Registers bevkd's zstd filter (id 32015, the same bytes as the standard plugin) once per
// process and turns off HDF5's automatic error printing for the calling thread.
void enter();

// Serialises HDF5 calls with a process-wide mutex when the HDF5 library was built without
// thread safety (HDF5 then has no lock of its own); a no-op with a thread-safe HDF5 (Debian's
// libhdf5 is one), whose global lock already serialises every call.
class SerialGuard {
 public:
  SerialGuard();
  ~SerialGuard();
  SerialGuard(const SerialGuard&) = delete;
  SerialGuard& operator=(const SerialGuard&) = delete;

 private:
  bool locked_ = false;
};

// The current thread's HDF5 error stack as one line ("H5Fopen: unable to open file; ...;
// truncated file: eof = 100, ..."), then clears it. Empty if there is none.
std::string take_errors();

// An owned HDF5 identifier (file, group, dataset, dataspace, type, property list, attribute).
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  ~Handle() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Closes now; returns false if HDF5 reported an error while closing.
  bool reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

inline Handle file(hid_t id) { return Handle(id, &H5Fclose); }
inline Handle dataset(hid_t id) { return Handle(id, &H5Dclose); }
inline Handle space(hid_t id) { return Handle(id, &H5Sclose); }
inline Handle type(hid_t id) { return Handle(id, &H5Tclose); }
inline Handle plist(hid_t id) { return Handle(id, &H5Pclose); }
inline Handle attr(hid_t id) { return Handle(id, &H5Aclose); }
inline Handle group(hid_t id) { return Handle(id, &H5Gclose); }

// The HDF5 file/memory type of a DType (little-endian IEEE/ints; float16 as a 16-bit IEEE
// float that h5py reads as numpy float16; strings fixed-length NUL-padded ASCII).
Handle make_type(DType dtype, std::size_t itemsize);
// The DType and element size of a file type, or false with a description of what it is.
bool describe_type(hid_t type, DType* dtype, std::size_t* itemsize, std::string* what);
// "float16" / "string(32)" / the description of an unsupported type.
std::string type_name(hid_t type);

std::vector<std::int64_t> dims(hid_t dset);
std::vector<std::int64_t> chunk_dims(hid_t dset);  // empty if not chunked
bool is_chunked(hid_t dset);

struct Filter {
  int id = 0;
  unsigned flags = 0;
  std::vector<unsigned> cd_values;
  std::string name;
};
std::vector<Filter> filters(hid_t dset);

bool exists(hid_t loc, const std::string& path);  // a link at `path` (intermediate groups checked)
// Every dataset under the root, as "a/b/c" paths, sorted.
std::vector<std::string> list_datasets(hid_t file);

// Root-group attributes.
bool has_attr(hid_t obj, const char* name);
void write_string_attr(hid_t obj, const char* name, const std::string& value);  // variable-length UTF-8
void write_i64_attr(hid_t obj, const char* name, const std::vector<std::int64_t>& values, bool scalar);
void write_f64_attr(hid_t obj, const char* name, const std::vector<double>& values);

// Typed attribute reads; each returns false with `why` when the attribute has another type.
bool read_string_attr(hid_t obj, const char* name, std::string* out, std::string* why);
bool read_i64_attr(hid_t obj, const char* name, std::vector<std::int64_t>* out, std::string* why);
bool read_f64_attr(hid_t obj, const char* name, std::vector<double>* out, std::string* why);

}  // namespace bevkd::storage::h5
