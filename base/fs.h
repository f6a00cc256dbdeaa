// File helpers with errors that name the file. Standard library only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bevkd {

// Reads a whole file. Throws bevkd::Error naming `path` if it is missing or unreadable.
std::string read_file(const std::string& path);

// Writes `content` to `path` atomically: the bytes go to a temporary file beside it
// ("<path>.tmp.<host>.<pid>.<n>", unique even across machines sharing a file system), are flushed to disk (fsync), and the file is renamed over `path`, so a
// reader sees either the old or the new complete file, never a torn one — also after a crash.
void write_file_atomic(const std::string& path, std::string_view content);
// Copies `from` to `to` atomically (write_file_atomic of its bytes).
void copy_file_atomic(const std::string& from, const std::string& to);
// Creates `path` with `content` only if it does not exist yet, atomically (a complete file or
// none; of several processes racing, exactly one wins). Returns false if `path` existed.
bool create_file_exclusive(const std::string& path, std::string_view content);

// Renames `from` to `to` atomically and fsyncs the directory so the rename survives a crash.
void rename_durable(const std::string& from, const std::string& to);

// fsync()s an existing file (e.g. before renaming it into place).
void fsync_file(const std::string& path);

// Size of a file in bytes; throws bevkd::Error naming `path` if it does not exist.
std::uint64_t file_size(const std::string& path);

// True if `path` exists (file or directory).
bool path_exists(const std::string& path);

// Creates `path` and its parents (like mkdir -p); throws bevkd::Error on failure.
void make_dirs(const std::string& path);

}  // namespace bevkd
