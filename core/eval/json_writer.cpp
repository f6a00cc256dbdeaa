#include "core/eval/json_writer.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "base/error.h"

namespace bevkd::core::eval {

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

void JsonWriter::newline_indent(std::size_t level) {
  out_ += '\n';
  out_.append(level * static_cast<std::size_t>(indent_), ' ');
}

void JsonWriter::before_value() {
  if (stack_.empty()) {
    BEVKD_ASSERT(out_.empty(), "JsonWriter: a second top-level value");
    return;
  }
  Level& l = stack_.back();
  if (l.object) {
    BEVKD_ASSERT(l.key_pending, "JsonWriter: a value inside an object needs a key first");
    l.key_pending = false;
    return;
  }
  if (l.count > 0) out_ += indent_ >= 0 ? "," : ", ";
  if (indent_ >= 0) newline_indent(stack_.size());
  ++l.count;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  BEVKD_ASSERT(!stack_.empty() && stack_.back().object && !stack_.back().key_pending,
               "JsonWriter: key outside an object or twice");
  Level& l = stack_.back();
  if (l.count > 0) out_ += indent_ >= 0 ? "," : ", ";
  if (indent_ >= 0) newline_indent(stack_.size());
  ++l.count;
  append_string(k);
  out_ += ": ";
  l.key_pending = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_ += '{';
  stack_.push_back({true, 0, false});
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  BEVKD_ASSERT(!stack_.empty() && stack_.back().object && !stack_.back().key_pending);
  const bool empty = stack_.back().count == 0;
  stack_.pop_back();
  if (!empty && indent_ >= 0) newline_indent(stack_.size());
  out_ += '}';
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_ += '[';
  stack_.push_back({false, 0, false});
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  BEVKD_ASSERT(!stack_.empty() && !stack_.back().object);
  const bool empty = stack_.back().count == 0;
  stack_.pop_back();
  if (!empty && indent_ >= 0) newline_indent(stack_.size());
  out_ += ']';
  return *this;
}

JsonWriter& JsonWriter::value(double v) {
  before_value();
  append_python_float(out_, v);
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t v) {
  before_value();
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, res.ptr);
  return *this;
}

JsonWriter& JsonWriter::value(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  append_string(s);
  return *this;
}

JsonWriter& JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::value(const std::vector<double>& v) {
  begin_array();
  for (double x : v) value(x);
  return end_array();
}

void JsonWriter::append_string(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out_ += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      case '\b': out_ += "\\b"; break;
      case '\f': out_ += "\\f"; break;
      default:
        if (c < 0x20) {
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 15];
        } else {
          out_ += ch;  // UTF-8 passes through (Python would write \uXXXX escapes)
        }
    }
  }
  out_ += '"';
}

}  // namespace bevkd::core::eval
