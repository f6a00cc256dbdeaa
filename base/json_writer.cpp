#include "base/json_writer.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace bevkd {

void append_python_float(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "Infinity" : "-Infinity";
    return;
  }
  if (v == 0.0) {
    out += std::signbit(v) ? "-0.0" : "0.0";
    return;
  }
  // Shortest round-trip digits (the same digits Python's repr chooses), then Python's layout:
  // positional if -4 < decpt <= 16, else exponent with a sign and at least two digits.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  BEVKD_ASSERT(res.ec == std::errc(), "to_chars failed");
  const char* p = buf;
  const char* const end = res.ptr;
  if (*p == '-') {
    out += '-';
    ++p;
  }
  char digits[32];
  int n = 0;
  for (; p < end && *p != 'e'; ++p)
    if (*p != '.') digits[n++] = *p;
  BEVKD_ASSERT(p < end && n > 0);
  ++p;  // 'e'
  const bool neg_exp = *p == '-';
  if (*p == '-' || *p == '+') ++p;
  int exp10 = 0;
  for (; p < end; ++p) exp10 = exp10 * 10 + (*p - '0');
  if (neg_exp) exp10 = -exp10;
  const int decpt = exp10 + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-decpt), '0');
      out.append(digits, static_cast<std::size_t>(n));
    } else if (decpt >= n) {
      out.append(digits, static_cast<std::size_t>(n));
      out.append(static_cast<std::size_t>(decpt - n), '0');
      out += ".0";
    } else {
      out.append(digits, static_cast<std::size_t>(decpt));
      out += '.';
      out.append(digits + decpt, static_cast<std::size_t>(n - decpt));
    }
  } else {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits + 1, static_cast<std::size_t>(n - 1));
    }
    out += 'e';
    out += exp10 < 0 ? '-' : '+';
    const int a = std::abs(exp10);
    if (a < 10) out += '0';
    char eb[8];
    const auto er = std::to_chars(eb, eb + sizeof eb, a);
    out.append(eb, er.ptr);
  }
}

std::string python_float_repr(double v) {
  std::string s;
  append_python_float(s, v);
  return s;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;  // UTF-8 passes through (Python would write \uXXXX escapes)
        }
    }
  }
  out += '"';
}

JsonWriter::JsonWriter(JsonFormat format) : format_(format) {}

JsonWriter::JsonWriter(std::string path, JsonFormat format)
    : format_(format), path_(std::move(path)), tmp_(path_ + ".tmp") {
  file_ = std::fopen(tmp_.c_str(), "wb");
  BEVKD_CHECK(file_ != nullptr, "cannot write ", tmp_, ": ", std::strerror(errno));
}

JsonWriter::~JsonWriter() {
  if (file_) {  // not closed: an exception unwound the writer; leave no partial file behind
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

// Before an array element or an object member: ',' after the first, then a new indented line
// (multi-line containers) or a space (one-line containers).
void JsonWriter::separator(bool multi_line) {
  Level& l = stack_.back();
  if (l.count++ > 0) buf_ += ',';
  if (multi_line) {
    buf_ += '\n';
    buf_.append(stack_.size() * static_cast<std::size_t>(format_.indent), ' ');
  } else if (l.count > 1) {
    buf_ += ' ';
  }
}

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (stack_.empty()) {
    BEVKD_ASSERT(!top_written_, "JsonWriter: a second top-level value");
    top_written_ = true;
    return;
  }
  BEVKD_ASSERT(!stack_.back().object, "JsonWriter: a value inside an object needs a key first");
  separator(stack_.back().multi_line);
}

JsonWriter& JsonWriter::key(std::string_view k) {
  BEVKD_ASSERT(!stack_.empty() && stack_.back().object && !after_key_, "JsonWriter: key outside an object or twice");
  separator(stack_.back().multi_line);
  append_json_string(buf_, k);
  buf_ += ": ";
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object() {
  const bool parent_inline = !stack_.empty() && !stack_.back().multi_line;
  before_value();
  buf_ += '{';
  stack_.push_back({true, format_.indent >= 0 && !parent_inline, 0});
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  const bool parent_inline = !stack_.empty() && !stack_.back().multi_line;
  const bool member = after_key_;
  before_value();
  buf_ += '[';
  const bool multi = format_.indent >= 0 && !parent_inline && !(member && format_.inline_member_arrays);
  stack_.push_back({false, multi, 0});
  return *this;
}

// Closes the innermost container: a new line at the parent's indent after a non-empty
// multi-line one, the bracket, and the final newline after the top-level value.
void JsonWriter::close_level(char bracket) {
  const Level l = stack_.back();
  stack_.pop_back();
  if (l.multi_line && l.count > 0) {
    buf_ += '\n';
    buf_.append(stack_.size() * static_cast<std::size_t>(format_.indent), ' ');
  }
  buf_ += bracket;
  if (stack_.empty() && format_.trailing_newline) buf_ += '\n';
  maybe_flush();
}

JsonWriter& JsonWriter::end_object() {
  BEVKD_ASSERT(!stack_.empty() && stack_.back().object && !after_key_, "JsonWriter: end_object without an object");
  close_level('}');
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  BEVKD_ASSERT(!stack_.empty() && !stack_.back().object, "JsonWriter: end_array without an array");
  close_level(']');
  return *this;
}

JsonWriter& JsonWriter::value(double v) {
  BEVKD_CHECK(format_.allow_nonfinite || std::isfinite(v),
              path_.empty() ? std::string("JSON writer") : path_, ": cannot write the non-finite number ",
              python_float_repr(v), " (this JSON format allows finite numbers only)");
  before_value();
  append_python_float(buf_, v);
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t v) {
  before_value();
  char b[32];
  const auto r = std::to_chars(b, b + sizeof b, v);
  buf_.append(b, r.ptr);
  return *this;
}

JsonWriter& JsonWriter::value(bool v) {
  before_value();
  buf_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  append_json_string(buf_, s);
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  buf_ += "null";
  return *this;
}

JsonWriter& JsonWriter::numbers(const double* v, std::size_t n) {
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
  BEVKD_ASSERT(stack_.empty(), "JsonWriter: close() with ", stack_.size(), " open arrays/objects");
  const bool ok = std::fwrite(buf_.data(), 1, buf_.size(), file_) == buf_.size();
  const bool closed_ok = std::fclose(file_) == 0;
  file_ = nullptr;
  closed_ = true;
  BEVKD_CHECK(ok && closed_ok, "cannot write ", tmp_, ": ", std::strerror(errno));
  buf_.clear();
  BEVKD_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot rename ", tmp_, " to ", path_, ": ",
              std::strerror(errno));
}

}  // namespace bevkd
