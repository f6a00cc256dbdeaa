#include "core/nuscenes/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd::core::nusc {

JsonWriter::JsonWriter(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  file_ = std::fopen(tmp_.c_str(), "wb");
  BEVKD_CHECK(file_ != nullptr, "cannot write ", tmp_, ": ", std::strerror(errno));
}

JsonWriter::JsonWriter() = default;

JsonWriter::~JsonWriter() {
  if (file_) {  // not closed: an exception unwound the writer; leave no partial file behind
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

void JsonWriter::append_double(std::string& out, double v) {
  BEVKD_CHECK(std::isfinite(v), "JSON writer: cannot write the non-finite number ", v);
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  BEVKD_ASSERT(r.ec == std::errc());
  std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
  out.append(s);
  if (s.find_first_of(".e") == std::string_view::npos) out.append(".0");
}

void JsonWriter::append_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out.append(esc);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (stack_.empty()) return;
  Level& l = stack_.back();
  BEVKD_ASSERT(!l.object, "JSON writer: a value inside an object needs a key");
  if (l.count++) buf_.push_back(',');
  if (l.inline_) {
    if (l.count > 1) buf_.push_back(' ');
  } else {
    buf_.push_back('\n');
  }
}

JsonWriter& JsonWriter::key(std::string_view k) {
  BEVKD_ASSERT(!stack_.empty() && stack_.back().object && !after_key_, "JSON writer: key outside an object");
  Level& l = stack_.back();
  if (l.count++) buf_.push_back(',');
  buf_.push_back('\n');
  append_string(buf_, k);
  buf_.append(": ");
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  buf_.push_back('{');
  stack_.push_back({true, false, 0});
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  BEVKD_ASSERT(!stack_.empty() && stack_.back().object && !after_key_);
  const bool empty = stack_.back().count == 0;
  stack_.pop_back();
  if (!empty) buf_.push_back('\n');
  buf_.push_back('}');
  if (stack_.empty()) buf_.push_back('\n');
  maybe_flush();
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  // Arrays that are object members, and everything nested in them, stay on one line.
  const bool inline_array = after_key_ || (!stack_.empty() && stack_.back().inline_);
  before_value();
  buf_.push_back('[');
  stack_.push_back({false, inline_array, 0});
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  BEVKD_ASSERT(!stack_.empty() && !stack_.back().object);
  const Level l = stack_.back();
  stack_.pop_back();
  if (!l.inline_ && l.count) buf_.push_back('\n');
  buf_.push_back(']');
  if (stack_.empty()) buf_.push_back('\n');
  maybe_flush();
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  append_string(buf_, s);
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t v) {
  before_value();
  char b[32];
  const auto r = std::to_chars(b, b + sizeof b, v);
  buf_.append(b, static_cast<std::size_t>(r.ptr - b));
  return *this;
}

JsonWriter& JsonWriter::value(double v) {
  before_value();
  append_double(buf_, v);
  return *this;
}

JsonWriter& JsonWriter::value(bool v) {
  before_value();
  buf_.append(v ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  buf_.append("null");
  return *this;
}

JsonWriter& JsonWriter::field(std::string_view k, const double* v, std::size_t n) {
  key(k);
  begin_array();
  for (std::size_t i = 0; i < n; ++i) value(v[i]);
  return end_array();
}

void JsonWriter::maybe_flush() {
  if (!file_ || buf_.size() < (4u << 20)) return;
  BEVKD_CHECK(std::fwrite(buf_.data(), 1, buf_.size(), file_) == buf_.size(), "cannot write ", tmp_, ": ",
              std::strerror(errno));
  buf_.clear();
}

void JsonWriter::close() {
  if (!file_ || closed_) return;
  BEVKD_ASSERT(stack_.empty(), "JSON writer: close() with ", stack_.size(), " open arrays/objects");
  const bool ok = std::fwrite(buf_.data(), 1, buf_.size(), file_) == buf_.size();
  const bool closed_ok = std::fclose(file_) == 0;
  file_ = nullptr;
  closed_ = true;
  BEVKD_CHECK(ok && closed_ok, "cannot write ", tmp_, ": ", std::strerror(errno));
  buf_.clear();
  BEVKD_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot rename ", tmp_, " to ", path_, ": ",
              std::strerror(errno));
}

}  // namespace bevkd::core::nusc
