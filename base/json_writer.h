// bevkd's one streaming JSON writer, for every JSON file bevkd writes by hand (nuScenes tables,
// results files, metrics files), where nlohmann::json would be too slow or would not lay the
// text out like the files it imitates.
//
// Numbers: integers as integers; floats in Python's repr (the shortest text that reads back to
// the same double, always with '.' or an exponent: "0.5", "2.0", "0.0001", "1e-05", "1e+16",
// "-0.0"), so that readers that tell int from float (Python's json) see a float. NaN and
// infinities are written as Python writes them (NaN, Infinity, -Infinity — accepted by
// Python's json and bevkd's readers, not by strict JSON parsers) when the format allows them,
// and are a bevkd::Error otherwise.
//
// Layout (JsonFormat):
//  * python(-1): one line with Python's default separators ", " and ": " (json.dumps(x));
//  * python(N):  json.dump(x, indent=N);
//  * nuscenes_tables(): the layout of the real nuScenes tables — indent 0, arrays that are
//    object members (and everything inside them) on one line, a final newline.
//
// Sinks: a string owned by the writer (str(), take()), or a file written under "<path>.tmp",
// flushed in 4 MiB pieces and renamed into place by close(); a writer destroyed without
// close() (an exception unwound it) removes the temporary file, so a killed or failed writer
// never leaves a truncated file under the final name.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace bevkd {

struct JsonFormat {
  int indent = -1;                    // < 0: one line; >= 0: one member per line, indented
  bool inline_member_arrays = false;  // arrays that are object members stay on one line
  bool trailing_newline = false;      // a '\n' after the top-level value
  bool allow_nonfinite = true;        // NaN/Infinity as Python writes them; false: an Error

  static JsonFormat python(int indent = -1) { return {indent, false, false, true}; }
  static JsonFormat nuscenes_tables() { return {0, true, true, false}; }
};

// Python's repr of a float: "0.5", "2.0", "0.0001", "1e-05", "1e+16", "-0.0", "NaN", "Infinity".
std::string python_float_repr(double v);
// Appends python_float_repr(v) to `out` (no temporary string).
void append_python_float(std::string& out, double v);
// Appends a JSON string literal (quoted; '"', '\\' and control characters escaped; UTF-8 as is).
void append_json_string(std::string& out, std::string_view s);

class JsonWriter {
 public:
  // Writes into a string owned by the writer.
  explicit JsonWriter(JsonFormat format = JsonFormat::python());
  // Writes to `path` through "<path>.tmp"; close() renames it into place.
  JsonWriter(std::string path, JsonFormat format);
  ~JsonWriter();
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  // Key of the next member; only inside an object.
  JsonWriter& key(std::string_view k);

  JsonWriter& value(double v);
  JsonWriter& value(std::int64_t v);
  JsonWriter& value(int v) { return value(static_cast<std::int64_t>(v)); }
  JsonWriter& value(bool v);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& null();
  // An array of numbers.
  JsonWriter& value(const std::vector<double>& v) { return numbers(v.data(), v.size()); }
  JsonWriter& numbers(const double* v, std::size_t n);
  // key(k) followed by value(v).
  template <typename T>
  JsonWriter& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  JsonWriter& field(std::string_view k, const double* v, std::size_t n) {
    key(k);
    return numbers(v, n);
  }

  // File sink: writes what is left, closes and renames the file into place. Throws bevkd::Error
  // naming the path on an I/O failure. String sink: no-op.
  void close();
  // String sink: the text written so far.
  const std::string& str() const { return buf_; }
  std::string take() { return std::move(buf_); }
  std::size_t size() const { return buf_.size(); }

 private:
  void before_value();
  void separator(bool multi_line);
  void close_level(char bracket);
  void maybe_flush();

  struct Level {
    bool object;
    bool multi_line;
    std::int64_t count;
  };
  JsonFormat format_;
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  bool closed_ = false;
  std::string buf_;
  std::vector<Level> stack_;
  bool after_key_ = false;
  bool top_written_ = false;
};

}  // namespace bevkd
