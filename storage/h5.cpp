#include "storage/h5.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>

#include "base/error.h"
#include "storage/codec.h"
#include "storage/zstd_filter.h"

namespace bevkd::storage::h5 {
namespace {

void register_zstd() {
  static_assert(kZstdHdf5FilterId == kZstdFilterId);
  BEVKD_CHECK(H5Zregister(zstd_hdf5_filter_class()) >= 0, "HDF5: cannot register the zstd filter (", take_errors(),
              ")");
}

herr_t collect_error(unsigned, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  std::string msg = e->desc ? e->desc : "";
  if (e->func_name && *e->func_name) msg = cat(e->func_name, ": ", msg);
  out->push_back(std::move(msg));
  return 0;
}

// One group's hard links in HDF5's native order (see list_datasets).
herr_t collect_link(hid_t, const char* name, const H5L_info_t* info, void* data) {
  if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

void visit_group(hid_t group, const std::string& prefix, int depth, std::set<haddr_t>& seen,
                 std::vector<std::string>& out, const std::string& where) {
  BEVKD_CHECK(depth < 16, where, ": groups nested deeper than 16 levels under ", prefix.empty() ? "/" : prefix,
              " (a damaged file links a group into itself)");
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(group, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, &collect_link, &names) < 0)
    BEVKD_FAIL(where, ": HDF5 cannot list group ", prefix.empty() ? "/" : prefix, ": the file is corrupt: HDF5 says: ",
               take_errors());
  for (const std::string& n : names) {
    const std::string path = prefix.empty() ? n : prefix + "/" + n;
    Handle obj(H5Oopen(group, n.c_str(), H5P_DEFAULT), &H5Oclose);
    BEVKD_CHECK(obj.valid(), where, ": HDF5 cannot open ", path, ": the file is corrupt: HDF5 says: ", take_errors());
    const H5I_type_t type = H5Iget_type(obj.get());
    if (type == H5I_DATASET) {
      out.push_back(path);
    } else if (type == H5I_GROUP) {
      H5O_info_t info;
      BEVKD_CHECK(H5Oget_info2(obj.get(), &info, H5O_INFO_BASIC) >= 0, where, ": HDF5 cannot describe group ", path,
                  ": the file is corrupt: HDF5 says: ", take_errors());
      BEVKD_CHECK(seen.insert(info.addr).second, where, ": group ", path,
                  " is linked twice in the file (a damaged link points back at a group)");
      visit_group(obj.get(), path, depth + 1, seen, out, where);
    }
  }
}

bool library_threadsafe() {
  static const bool ts = [] {
    hbool_t is_ts = false;
    return H5is_library_threadsafe(&is_ts) >= 0 && is_ts;
  }();
  return ts;
}

std::recursive_mutex& serial_mutex() {
  static std::recursive_mutex mu;
  return mu;
}

// The fork gate: many threads inside HDF5 (shared), or one thread forking (exclusive). Nested
// guards of one thread count as one (std::shared_mutex may not be locked twice by a thread).
struct ForkGate {
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;        // threads holding a shared guard
  bool forking = false;  // a thread is waiting for (or doing) a fork
};

ForkGate& fork_gate() {
  static ForkGate g;
  return g;
}

thread_local int t_guard_depth = 0;
bool g_fork_child = false;  // in a child of fork_and_read: one thread, guards are no-ops

}  // namespace

SerialGuard::SerialGuard() {
  if (g_fork_child) return;
  if (t_guard_depth++ == 0) {
    ForkGate& g = fork_gate();
    std::unique_lock<std::mutex> lock(g.mu);
    g.cv.wait(lock, [&] { return !g.forking; });
    ++g.inside;
    gated_ = true;
  }
  if (!library_threadsafe()) {
    serial_mutex().lock();
    locked_ = true;
  }
}

SerialGuard::~SerialGuard() {
  if (g_fork_child) return;
  if (locked_) serial_mutex().unlock();
  if (gated_) {
    ForkGate& g = fork_gate();
    std::lock_guard<std::mutex> lock(g.mu);
    --g.inside;
    g.cv.notify_all();
  }
  --t_guard_depth;
}

bool fork_and_read(const std::function<bool(std::string* out, std::string* why)>& work, std::string* out,
                   std::string* why, double timeout_s) {
  BEVKD_ASSERT(t_guard_depth == 0, "fork_and_read called while holding a SerialGuard");
  int fds[2];
  BEVKD_CHECK(::pipe(fds) == 0, "cannot create a pipe (", std::strerror(errno), ")");
  ForkGate& g = fork_gate();
  {
    std::unique_lock<std::mutex> lock(g.mu);
    g.cv.wait(lock, [&] { return !g.forking; });
    g.forking = true;  // new guards wait from here on
    g.cv.wait(lock, [&] { return g.inside == 0; });
  }
  // No thread is inside HDF5 now, and none can enter until `forking` is cleared. The gate's own
  // mutex is not held across fork(): the child never touches the gate (g_fork_child).
  const pid_t pid = ::fork();
  if (pid != 0) {
    std::lock_guard<std::mutex> lock(g.mu);
    g.forking = false;
    g.cv.notify_all();
  }
  if (pid == 0) {
    // The child: only this thread exists; no other thread was inside HDF5 when it forked. It
    // dies with its parent, and by SIGALRM if HDF5 loops on the damaged file.
    g_fork_child = true;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::alarm(static_cast<unsigned>(timeout_s) + 1);
    ::close(fds[0]);
    std::string data, reason;
    bool ok = false;
    try {
      ok = work(&data, &reason);
    } catch (const std::exception& e) {
      reason = e.what();
    }
    // Record: 1 byte status, then the payload (data or reason).
    const std::string& payload = ok ? data : reason;
    const char status = ok ? 'O' : 'E';
    std::size_t off = 0;
    std::string msg(1, status);
    msg += payload;
    while (off < msg.size()) {
      const ssize_t n = ::write(fds[1], msg.data() + off, msg.size() - off);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        ::_exit(3);
      }
      off += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    BEVKD_FAIL("cannot fork a process to read the file (", std::strerror(errno), ")");
  }
  std::string got;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  bool timed_out = false;
  while (true) {
    const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else break;
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    *why = cat("the child did not finish in ", timeout_s, " s (killed)");
    return false;
  }
  if (WIFSIGNALED(status)) {
    *why = cat("killed by signal ", WTERMSIG(status), " (", ::strsignal(WTERMSIG(status)), ")");
    return false;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got.empty()) {
    *why = cat("exit status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return false;
  }
  if (got[0] != 'O') {
    *why = got.substr(1);
    return false;
  }
  *out = got.substr(1);
  return true;
}

void enter() {
  static std::once_flag once;
  thread_local bool silenced = false;
  if (!silenced) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    silenced = true;
  }
  std::call_once(once, register_zstd);
}

std::string take_errors() {
  std::vector<std::string> msgs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, &collect_error, &msgs);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  for (const auto& m : msgs) out += cat(out.empty() ? "" : "; ", m);
  return out;
}

bool Handle::reset() {
  bool ok = true;
  if (id_ >= 0 && closer_ != nullptr) ok = closer_(id_) >= 0;
  id_ = H5I_INVALID_HID;
  return ok;
}

Handle make_type(DType dtype, std::size_t itemsize) {
  switch (dtype) {
    case DType::kUInt8: return type(H5Tcopy(H5T_STD_U8LE));
    case DType::kInt8: return type(H5Tcopy(H5T_STD_I8LE));
    case DType::kInt16: return type(H5Tcopy(H5T_STD_I16LE));
    case DType::kInt32: return type(H5Tcopy(H5T_STD_I32LE));
    case DType::kInt64: return type(H5Tcopy(H5T_STD_I64LE));
    case DType::kUInt64: return type(H5Tcopy(H5T_STD_U64LE));
    case DType::kFloat32: return type(H5Tcopy(H5T_IEEE_F32LE));
    case DType::kFloat64: return type(H5Tcopy(H5T_IEEE_F64LE));
    case DType::kFloat16: {
      // IEEE binary16 the way h5py defines it (h5py reads it as numpy float16).
      Handle t = type(H5Tcopy(H5T_IEEE_F32LE));
      BEVKD_CHECK(H5Tset_fields(t.get(), 15, 10, 5, 0, 10) >= 0 && H5Tset_size(t.get(), 2) >= 0 &&
                      H5Tset_ebias(t.get(), 15) >= 0 && H5Tset_precision(t.get(), 16) >= 0,
                  "HDF5: cannot define the float16 type (", take_errors(), ")");
      return t;
    }
    case DType::kString: {
      Handle t = type(H5Tcopy(H5T_C_S1));
      BEVKD_CHECK(H5Tset_size(t.get(), itemsize) >= 0 && H5Tset_strpad(t.get(), H5T_STR_NULLPAD) >= 0 &&
                      H5Tset_cset(t.get(), H5T_CSET_ASCII) >= 0,
                  "HDF5: cannot define a ", itemsize, "-byte string type (", take_errors(), ")");
      return t;
    }
  }
  BEVKD_ASSERT(false, "unknown dtype");
  return Handle();
}

bool describe_type(hid_t t, DType* dtype, std::size_t* itemsize, std::string* what) {
  const H5T_class_t cls = H5Tget_class(t);
  const std::size_t size = H5Tget_size(t);
  *itemsize = size;
  if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    if (H5Tget_order(t) != H5T_ORDER_LE && size > 1) {
      *what = cat("big-endian ", cls == H5T_INTEGER ? "integer" : "float", " of ", size, " bytes");
      return false;
    }
  }
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(t) == H5T_SGN_2;
    switch (size) {
      case 1: *dtype = is_signed ? DType::kInt8 : DType::kUInt8; return true;
      case 2: if (is_signed) { *dtype = DType::kInt16; return true; } break;
      case 4: if (is_signed) { *dtype = DType::kInt32; return true; } break;
      case 8: *dtype = is_signed ? DType::kInt64 : DType::kUInt64; return true;
      default: break;
    }
    *what = cat(is_signed ? "int" : "uint", 8 * size);
    return false;
  }
  if (cls == H5T_FLOAT) {
    if (size == 2) {
      size_t spos, epos, esize, mpos, msize;
      H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize);
      if (spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 && H5Tget_ebias(t) == 15) {
        *dtype = DType::kFloat16;
        return true;
      }
      *what = "a non-IEEE 16-bit float";
      return false;
    }
    if (size == 4) { *dtype = DType::kFloat32; return true; }
    if (size == 8) { *dtype = DType::kFloat64; return true; }
    *what = cat("float", 8 * size);
    return false;
  }
  if (cls == H5T_STRING) {
    if (H5Tis_variable_str(t) > 0) {
      *what = "variable-length string";
      return false;
    }
    *dtype = DType::kString;
    return true;
  }
  static const char* names[] = {"integer", "float", "time", "string", "bitfield", "opaque",
                                "compound", "reference", "enum", "vlen", "array"};
  *what = (cls >= 0 && cls < 11) ? names[cls] : "unknown type";
  return false;
}

std::string type_name(hid_t t) {
  DType d;
  std::size_t size;
  std::string what;
  if (!describe_type(t, &d, &size, &what)) return what;
  if (d == DType::kString) return cat("string(", size, ")");
  return std::string(dtype_name(d));
}

std::vector<std::int64_t> dims(hid_t dset) {
  Handle s = space(H5Dget_space(dset));
  const int rank = H5Sget_simple_extent_ndims(s.get());
  std::vector<hsize_t> d(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(s.get(), d.data(), nullptr);
  return std::vector<std::int64_t>(d.begin(), d.end());
}

bool is_chunked(hid_t dset) {
  Handle p = plist(H5Dget_create_plist(dset));
  return H5Pget_layout(p.get()) == H5D_CHUNKED;
}

std::vector<std::int64_t> chunk_dims(hid_t dset) {
  Handle p = plist(H5Dget_create_plist(dset));
  if (H5Pget_layout(p.get()) != H5D_CHUNKED) return {};
  hsize_t c[H5S_MAX_RANK];
  const int rank = H5Pget_chunk(p.get(), H5S_MAX_RANK, c);
  return std::vector<std::int64_t>(c, c + std::max(rank, 0));
}

std::vector<Filter> filters(hid_t dset) {
  Handle p = plist(H5Dget_create_plist(dset));
  std::vector<Filter> out;
  const int n = H5Pget_nfilters(p.get());
  for (int i = 0; i < n; ++i) {
    Filter f;
    unsigned cd[16];
    size_t ncd = 16;
    char name[64] = {0};
    unsigned config = 0;
    f.id = static_cast<int>(H5Pget_filter2(p.get(), static_cast<unsigned>(i), &f.flags, &ncd, cd, sizeof name, name, &config));
    f.cd_values.assign(cd, cd + std::min<size_t>(ncd, 16));
    f.name = name;
    out.push_back(std::move(f));
  }
  return out;
}

bool exists(hid_t loc, const std::string& path) {
  std::size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

std::vector<std::string> list_datasets(hid_t file, const std::string& where) {
  std::vector<std::string> out;
  std::set<haddr_t> seen;
  visit_group(file, "", 0, seen, out, where);
  std::sort(out.begin(), out.end());
  return out;
}

bool has_attr(hid_t obj, const char* name) { return H5Aexists(obj, name) > 0; }

bool is_vlen_string_attr(hid_t obj, const char* name) {
  Handle a = attr(H5Aopen(obj, name, H5P_DEFAULT));
  if (!a) {
    take_errors();
    return false;
  }
  Handle t = type(H5Aget_type(a.get()));
  return t.valid() && H5Tget_class(t.get()) == H5T_STRING && H5Tis_variable_str(t.get()) > 0;
}

void write_string_attr(hid_t obj, const char* name, const std::string& value, bool fixed_length) {
  if (has_attr(obj, name)) H5Adelete(obj, name);
  Handle t = type(H5Tcopy(H5T_C_S1));
  // A fixed-length string of exactly the value's bytes (NUL-padded; HDF5 needs >= 1 byte).
  H5Tset_size(t.get(), fixed_length ? std::max<std::size_t>(value.size(), 1) : H5T_VARIABLE);
  if (fixed_length) H5Tset_strpad(t.get(), H5T_STR_NULLPAD);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  Handle s = space(H5Screate(H5S_SCALAR));
  Handle a = attr(H5Acreate2(obj, name, t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  std::string padded = value;
  if (padded.empty()) padded.push_back('\0');
  BEVKD_CHECK(a.valid() && H5Awrite(a.get(), t.get(), fixed_length ? static_cast<const void*>(padded.data())
                                                                     : static_cast<const void*>(&p)) >= 0,
              "HDF5: cannot write attribute ", name, " (", take_errors(), ")");
}

void write_i64_attr(hid_t obj, const char* name, const std::vector<std::int64_t>& values, bool scalar) {
  if (has_attr(obj, name)) H5Adelete(obj, name);
  const hsize_t n = values.size();
  Handle s = space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr));
  Handle a = attr(H5Acreate2(obj, name, H5T_STD_I64LE, s.get(), H5P_DEFAULT, H5P_DEFAULT));
  BEVKD_CHECK(a.valid() && H5Awrite(a.get(), H5T_NATIVE_INT64, values.data()) >= 0, "HDF5: cannot write attribute ",
              name, " (", take_errors(), ")");
}

void write_f64_attr(hid_t obj, const char* name, const std::vector<double>& values) {
  if (has_attr(obj, name)) H5Adelete(obj, name);
  const hsize_t n = values.size();
  Handle s = space(H5Screate_simple(1, &n, nullptr));
  Handle a = attr(H5Acreate2(obj, name, H5T_IEEE_F64LE, s.get(), H5P_DEFAULT, H5P_DEFAULT));
  BEVKD_CHECK(a.valid() && H5Awrite(a.get(), H5T_NATIVE_DOUBLE, values.data()) >= 0, "HDF5: cannot write attribute ",
              name, " (", take_errors(), ")");
}

namespace {

// Opens an attribute and checks its type class; fills `why` on mismatch.
Handle open_attr(hid_t obj, const char* name, H5T_class_t want, const char* want_name, hssize_t* count,
                 std::string* why) {
  Handle a = attr(H5Aopen(obj, name, H5P_DEFAULT));
  if (!a) {
    *why = "cannot be opened";
    take_errors();
    return a;
  }
  Handle t = type(H5Aget_type(a.get()));
  if (H5Tget_class(t.get()) != want) {
    *why = cat("is ", type_name(t.get()), ", expected ", want_name);
    return Handle();
  }
  Handle s = space(H5Aget_space(a.get()));
  *count = H5Sget_simple_extent_npoints(s.get());
  return a;
}

}  // namespace

bool read_string_attr(hid_t obj, const char* name, std::string* out, std::string* why) {
  hssize_t count = 0;
  Handle a = open_attr(obj, name, H5T_STRING, "a string", &count, why);
  if (!a) return false;
  if (count != 1) {
    *why = cat("has ", count, " elements, expected one string");
    return false;
  }
  Handle ft = type(H5Aget_type(a.get()));
  if (H5Tis_variable_str(ft.get()) > 0) {
    Handle mt = type(H5Tcopy(H5T_C_S1));
    H5Tset_size(mt.get(), H5T_VARIABLE);
    H5Tset_cset(mt.get(), H5Tget_cset(ft.get()));
    char* p = nullptr;
    if (H5Aread(a.get(), mt.get(), &p) < 0) {
      *why = cat("cannot be read (", take_errors(), ")");
      return false;
    }
    *out = p ? p : "";
    H5free_memory(p);
    return true;
  }
  const std::size_t size = H5Tget_size(ft.get());
  std::string buf(size, '\0');
  if (H5Aread(a.get(), ft.get(), buf.data()) < 0) {
    *why = cat("cannot be read (", take_errors(), ")");
    return false;
  }
  buf.resize(strnlen(buf.data(), size));
  *out = buf;
  return true;
}

namespace {

template <typename T>
bool read_numeric_attr(hid_t obj, const char* name, H5T_class_t cls, const char* cls_name, hid_t mem_type,
                       std::vector<T>* out, std::string* why) {
  hssize_t count = 0;
  Handle a = open_attr(obj, name, cls, cls_name, &count, why);
  if (!a) return false;
  out->assign(static_cast<std::size_t>(count), T{});
  if (H5Aread(a.get(), mem_type, out->data()) < 0) {
    *why = cat("cannot be read (", take_errors(), ")");
    return false;
  }
  return true;
}

}  // namespace

bool read_i64_attr(hid_t obj, const char* name, std::vector<std::int64_t>* out, std::string* why) {
  return read_numeric_attr(obj, name, H5T_INTEGER, "integers", H5T_NATIVE_INT64, out, why);
}

bool read_f64_attr(hid_t obj, const char* name, std::vector<double>* out, std::string* why) {
  return read_numeric_attr(obj, name, H5T_FLOAT, "floats", H5T_NATIVE_DOUBLE, out, why);
}

}  // namespace bevkd::storage::h5
