#include "base/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace bevkd {
namespace {

std::string errno_text() { return std::strerror(errno); }

void fsync_dir_of(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: some file systems do not allow opening directories
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BEVKD_CHECK(in.good(), path, ": cannot open for reading (", errno_text(), ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  BEVKD_CHECK(!in.bad(), path, ": read failed (", errno_text(), ")");
  return ss.str();
}

void fsync_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  BEVKD_CHECK(fd >= 0, path, ": cannot open to sync (", errno_text(), ")");
  int rc = ::fsync(fd);
  ::close(fd);
  BEVKD_CHECK(rc == 0, path, ": fsync failed (", errno_text(), ")");
}

void rename_durable(const std::string& from, const std::string& to) {
  BEVKD_CHECK(::rename(from.c_str(), to.c_str()) == 0, "cannot rename ", from, " to ", to, " (",
              errno_text(), ")");
  fsync_dir_of(to);
}

namespace {

// A temporary name beside `path` that no other process writes: host name, pid and a per-process
// counter (workers of one job on a shared file system may share pids, e.g. pid 1 in containers).
std::string unique_temp_name(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  char host[256] = "host";
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "host");
  host[sizeof host - 1] = '\0';
  return cat(path, ".tmp.", host, ".", ::getpid(), ".", counter.fetch_add(1));
}

// Writes `content` to a new file `tmp` and fsyncs it; removes it and throws on failure.
void write_new_file(const std::string& tmp, std::string_view content) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  BEVKD_CHECK(fd >= 0, tmp, ": cannot create (", errno_text(), ")");
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      BEVKD_FAIL(tmp, ": write failed after ", content.size() - left, " of ", content.size(),
                 " bytes (", why, ")");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) {
    ::unlink(tmp.c_str());
    BEVKD_FAIL(tmp, ": fsync failed (", errno_text(), ")");
  }
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view content) {
  const std::string tmp = unique_temp_name(path);
  write_new_file(tmp, content);
  rename_durable(tmp, path);
}

bool create_file_exclusive(const std::string& path, std::string_view content) {
  const std::string tmp = unique_temp_name(path);
  write_new_file(tmp, content);
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && link_errno == EEXIST) return false;
  errno = link_errno;
  BEVKD_CHECK(rc == 0, "cannot create ", path, " (", errno_text(), ")");
  fsync_dir_of(path);
  return true;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  BEVKD_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot stat (", errno_text(), ")");
  return static_cast<std::uint64_t>(st.st_size);
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  BEVKD_CHECK(!ec, path, ": cannot create directory (", ec.message(), ")");
}

void copy_file_atomic(const std::string& from, const std::string& to) { write_file_atomic(to, read_file(from)); }

}  // namespace bevkd
