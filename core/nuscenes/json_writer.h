// A small streaming JSON writer for nuScenes tables and other JSON outputs.
//
// Layout: objects put every member on its own line (like the real nuScenes tables, which are
// written with indent 0); arrays inside an object stay on one line. Floats are written in
// the shortest form that reads back to the same double and always carry a '.' or an exponent,
// so that JSON readers that distinguish int and float (Python's json) see a float; a NaN or
// infinite float is an error (JSON has no NaN). The output is flushed to the file in chunks,
// written under "<path>.tmp" and renamed into place by close(), so a killed writer never
// leaves a truncated file under the final name.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace bevkd::core::nusc {

class JsonWriter {
 public:
  // Writes to `path` (through "<path>.tmp" + rename on close()).
  explicit JsonWriter(std::string path);
  // Writes into a string owned by the writer (see str()); close() is a no-op.
  JsonWriter();
  ~JsonWriter();
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(std::int64_t v);
  JsonWriter& value(int v) { return value(static_cast<std::int64_t>(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  JsonWriter& null();
  // key(k) followed by value(v).
  template <typename T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  // An array of numbers on one line.
  JsonWriter& field(std::string_view k, const double* v, std::size_t n);

  // Finishes the file (flush, rename). Throws bevkd::Error naming the path on I/O failure.
  void close();
  // The text written so far (string mode).
  const std::string& str() const { return buf_; }

  // Appends the shortest round-trip form of a finite double (with '.' or exponent).
  static void append_double(std::string& out, double v);
  // Appends a JSON string literal (quoted, escaped).
  static void append_string(std::string& out, std::string_view s);

 private:
  void before_value();
  void maybe_flush();

  struct Level {
    bool object;
    bool inline_;  // arrays inside objects: one line
    int count;
  };
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  std::string buf_;
  std::vector<Level> stack_;
  bool after_key_ = false;
  bool closed_ = false;
};

}  // namespace bevkd::core::nusc
