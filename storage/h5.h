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
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/array.h"

namespace bevkd::storage::h5 {

// Registers bevkd's zstd filter (id 32015, the same bytes as the standard plugin) once per
// process and turns off HDF5's automatic error printing for the calling thread.
void enter();

// Held around every HDF5 call of storage/ (nested guards on one thread are free):
//  * serialises HDF5 calls with a process-wide mutex when the HDF5 library was built without
//    thread safety (HDF5 then has no lock of its own); with a thread-safe HDF5 (Debian's libhdf5
//    is one) its global lock already serialises every call;
//  * and takes a process-wide "fork gate" in shared mode, so that fork_and_read() can wait until
//    no thread is inside HDF5 before it forks (a child forked while another thread holds HDF5's
//    lock would deadlock).
class SerialGuard {
 public:
  SerialGuard();
  ~SerialGuard();
  SerialGuard(const SerialGuard&) = delete;
  SerialGuard& operator=(const SerialGuard&) = delete;

 private:
  bool locked_ = false;
  bool gated_ = false;
};

// Runs `work` in a forked child process while no other thread of this process is inside HDF5
// (the child inherits this process's open HDF5 files) and returns what it wrote to `out` (a
// pipe). For HDF5 reads that may crash the library on a damaged file (HDF5 1.10 reads its
// global heap without any checksum): a crash kills only the child. Returns false, with `why`
// ("killed by signal 11 (Segmentation fault)", "exit status 3", or a message the child sent),
// when the child did not finish normally or within `timeout_s` (it is killed; a damaged heap can
// also make HDF5 loop forever). The child dies with its parent. The calling thread must not
// hold a SerialGuard.
bool fork_and_read(const std::function<bool(std::string* out, std::string* why)>& work, std::string* out,
                   std::string* why, double timeout_s = 10.0);

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
// Every dataset under the root, as "a/b/c" paths, sorted. Throws bevkd::Error (naming `where`)
// when HDF5 cannot iterate a group. Groups are walked in HDF5's native order (H5Literate with
// H5_ITER_NATIVE, our own recursion), never by H5Lvisit in name order: for a group in dense
// link storage, name order makes HDF5 1.10 build a table of the links, and when a damaged
// B-tree or heap block stops that halfway it frees the table's uninitialised entries
// (H5G__link_release_table: "free(): invalid pointer", SIGABRT/SIGSEGV).
std::vector<std::string> list_datasets(hid_t file, const std::string& where);

// Root-group attributes.
bool has_attr(hid_t obj, const char* name);
// A UTF-8 string attribute: fixed-length (stored in the object header, which HDF5 checksums;
// what shard schema 1.2 writes) or variable-length (its bytes go to HDF5's global heap, which
// has no checksum; what schema 1.0 and 1.1 wrote).
void write_string_attr(hid_t obj, const char* name, const std::string& value, bool fixed_length = true);
// Whether an attribute is a variable-length string (its value lives in the global heap).
bool is_vlen_string_attr(hid_t obj, const char* name);
void write_i64_attr(hid_t obj, const char* name, const std::vector<std::int64_t>& values, bool scalar);
void write_f64_attr(hid_t obj, const char* name, const std::vector<double>& values);

// Typed attribute reads; each returns false with `why` when the attribute has another type.
bool read_string_attr(hid_t obj, const char* name, std::string* out, std::string* why);
bool read_i64_attr(hid_t obj, const char* name, std::vector<std::int64_t>* out, std::string* why);
bool read_f64_attr(hid_t obj, const char* name, std::vector<double>* out, std::string* why);

}  // namespace bevkd::storage::h5
