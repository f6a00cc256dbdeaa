#include "core/nuscenes/tables.h"

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <unordered_set>

#include <tbb/enumerable_thread_specific.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include "base/error.h"
#include "base/prefetch_queue.h"
#include "base/fs.h"
#include "base/progress.h"
#include "core/nuscenes/splits.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::nusc {

namespace od = simdjson::ondemand;

std::string_view table_name(Table t) {
  static constexpr std::string_view kNames[kNumTables] = {
      "category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose",
      "log",      "scene",     "sample",     "sample_data", "sample_annotation", "map"};
  return kNames[static_cast<int>(t)];
}

// ---- TokenColumn -------------------------------------------------------------------------------

namespace {
inline std::size_t hash_token(std::string_view s) { return std::hash<std::string_view>{}(s); }
}  // namespace

void TokenColumn::reserve(std::size_t records, std::size_t chars) {
  chars_.reserve(chars);
  if (mixed_) offsets_.reserve(records + 1);
}

std::uint32_t TokenColumn::add(std::string_view token) {
  BEVKD_CHECK(size_ < kNone - 1, "nuScenes table has more than 2^32 - 2 records");
  const int len = static_cast<int>(token.size());
  if (!mixed_) {
    if (size_ == 0) {
      fixed_len_ = len;
    } else if (len != fixed_len_) {  // switch to explicit offsets
      mixed_ = true;
      offsets_.resize(static_cast<std::size_t>(size_) + 1);
      for (std::uint32_t i = 0; i <= size_; ++i)
        offsets_[i] = static_cast<std::uint64_t>(i) * static_cast<std::uint64_t>(fixed_len_);
      fixed_len_ = -1;
    }
  }
  chars_.append(token);
  if (mixed_) offsets_.push_back(chars_.size());
  return size_++;
}

std::uint32_t TokenColumn::build_index(std::uint32_t* first) {
  const std::uint32_t n = size();
  std::size_t cap = 16;
  while (cap < n + n / 2) cap *= 2;  // load factor <= 2/3
  slots_.assign(cap, 0);
  const std::size_t mask = cap - 1;
  for (std::uint32_t i = 0; i < n; ++i) {
    const std::string_view t = (*this)[i];
    const std::size_t h = hash_token(t);
    const std::uint64_t fp = static_cast<std::uint64_t>(h >> 32) << 32;
    std::size_t s = h & mask;
    while (slots_[s] != 0) {
      const std::uint32_t j = static_cast<std::uint32_t>(slots_[s]) - 1;
      if ((slots_[s] & 0xFFFFFFFF00000000ull) == fp && (*this)[j] == t) {
        *first = j;
        return i;
      }
      s = (s + 1) & mask;
    }
    slots_[s] = fp | (static_cast<std::uint64_t>(i) + 1);
  }
  return kNone;
}

std::uint32_t TokenColumn::find(std::string_view token) const {
  if (slots_.empty()) return kNone;
  const std::size_t mask = slots_.size() - 1;
  const std::size_t h = hash_token(token);
  const std::uint64_t fp = static_cast<std::uint64_t>(h >> 32) << 32;
  std::size_t s = h & mask;
  while (slots_[s] != 0) {
    if ((slots_[s] & 0xFFFFFFFF00000000ull) == fp) {
      const std::uint32_t j = static_cast<std::uint32_t>(slots_[s]) - 1;
      if ((*this)[j] == token) return j;
    }
    s = (s + 1) & mask;
  }
  return kNone;
}

std::size_t TokenColumn::memory_bytes() const {
  return chars_.capacity() + offsets_.capacity() * sizeof(std::uint64_t) + slots_.capacity() * sizeof(std::uint64_t);
}

NuscBox SampleAnnotation::box() const {
  NuscBox b;
  b.translation = translation;
  b.size = size;
  b.rotation = rotation;
  b.velocity = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  return b;
}

// ---- JSON helpers ----------------------------------------------------------------------------

namespace {

// Where a value came from, for error messages: "<file> record 12 (token "abc")".
struct Where {
  const std::string* file = nullptr;
  std::size_t record = 0;
  std::string_view token;

  std::string str() const {
    if (token.empty()) return cat(*file, " record ", record);
    return cat(*file, " record ", record, " (token \"", token, "\")");
  }
};

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) s.remove_suffix(1);
  if (s.size() > 40) return s.substr(0, 40);
  return s;
}

// A description of what a value is, for "expected X, found Y".
std::string found(od::value& v) {
  od::json_type t;
  const std::string raw(trimmed(v.raw_json_token()));
  if (v.type().get(t) != simdjson::SUCCESS) return cat("'", raw, "'");
  switch (t) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::number: return cat("the number ", raw);
    case od::json_type::string: return cat("the string ", raw);
    case od::json_type::boolean: return cat("the boolean ", raw);
    case od::json_type::null: return "null";
  }
  return cat("'", raw, "'");
}

[[noreturn]] void type_error(const Where& w, std::string_view field, std::string_view expected, od::value& v) {
  BEVKD_FAIL(w.str(), ": field \"", field, "\" expected ", expected, ", found ", found(v));
}

std::string_view get_string(od::value v, const Where& w, std::string_view field) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) type_error(w, field, "a string", v);
  return s;
}

std::int64_t get_int(od::value v, const Where& w, std::string_view field) {
  std::int64_t x = 0;
  if (v.get_int64().get(x) != simdjson::SUCCESS) {
    // An integer literal too large for int64 is named as an overflow, not as a wrong type.
    const std::string raw(trimmed(v.raw_json_token()));
    const bool integer_literal = !raw.empty() && raw.find_first_not_of("-0123456789") == std::string::npos &&
                                 raw.find_first_of("0123456789") != std::string::npos;
    if (integer_literal)
      BEVKD_FAIL(w.str(), ": field \"", field, "\" is ", raw, ", which does not fit int64 (",
                 std::numeric_limits<std::int64_t>::min(), " .. ", std::numeric_limits<std::int64_t>::max(), ")");
    type_error(w, field, "an integer", v);
  }
  return x;
}

// An integer that must fit the record's C++ field of type T (e.g. width 2^32 + 640 is not
// silently 640): refused naming the file, record and field.
template <typename T>
T get_int_as(od::value v, const Where& w, std::string_view field, const char* type_name) {
  const std::int64_t x = get_int(v, w, field);
  if (x < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
      x > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
    BEVKD_FAIL(w.str(), ": field \"", field, "\" is ", x, ", which does not fit ", type_name, " (",
               static_cast<std::int64_t>(std::numeric_limits<T>::min()), " .. ",
               static_cast<std::int64_t>(std::numeric_limits<T>::max()), ")");
  return static_cast<T>(x);
}

bool get_bool(od::value v, const Where& w, std::string_view field) {
  bool b = false;
  if (v.get_bool().get(b) != simdjson::SUCCESS) type_error(w, field, "true or false", v);
  return b;
}

// "field" or "field[index]" for messages (built only when a message is needed).
std::string field_name(std::string_view field, int index) {
  return index < 0 ? std::string(field) : cat(field, "[", index, "]");
}

// A finite JSON number (integers accepted). NaN/Infinity (which Python's json writes) and
// out-of-range values are rejected with the raw text in the message. `index` >= 0 names an
// element of an array field.
double get_number(od::value v, const Where& w, std::string_view field, int index = -1) {
  double x = 0;
  if (v.get_double().get(x) != simdjson::SUCCESS || !std::isfinite(x)) {
    const std::string raw(trimmed(v.raw_json_token()));
    const std::string name = field_name(field, index);
    if (raw.find("NaN") != std::string::npos || raw.find("nan") != std::string::npos)
      BEVKD_FAIL(w.str(), ": field \"", name, "\" is NaN (expected a finite number)");
    if (raw.find("Infinity") != std::string::npos || raw.find("inf") != std::string::npos)
      BEVKD_FAIL(w.str(), ": field \"", name, "\" is ", raw, " (expected a finite number)");
    type_error(w, name, "a finite number", v);
  }
  return x;
}

// A JSON array of exactly n finite numbers.
void get_numbers(od::value v, const Where& w, std::string_view field, double* out, std::size_t n) {
  od::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) type_error(w, field, cat("an array of ", n, " numbers"), v);
  std::size_t k = 0;
  for (auto elem : arr) {
    od::value e;
    BEVKD_CHECK(elem.get(e) == simdjson::SUCCESS, w.str(), ": malformed JSON in field \"", field, "\"");
    BEVKD_CHECK(k < n, w.str(), ": field \"", field, "\" expected ", n, " numbers, found more");
    out[k] = get_number(e, w, field, static_cast<int>(k));
    ++k;
  }
  BEVKD_CHECK(k == n, w.str(), ": field \"", field, "\" expected ", n, " numbers, found ", k);
}

Quat get_quaternion(od::value v, const Where& w, std::string_view field) {
  double q[4];
  get_numbers(v, w, field, q, 4);
  const double n = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
  BEVKD_CHECK(n > 1e-12, w.str(), ": field \"", field, "\" is the zero quaternion [", q[0], ", ", q[1], ", ", q[2],
              ", ", q[3], "] (expected a rotation [w, x, y, z])");
  return {q[0], q[1], q[2], q[3]};
}

// The record loop: iterates the fields of one record and checks that the required ones came.
class FieldSet {
 public:
  explicit FieldSet(std::initializer_list<std::string_view> required) : required_(required) {}
  // Index of `key` among the required fields, or -1 (unknown fields are ignored).
  int index(std::string_view key) const {
    for (std::size_t i = 0; i < required_.size(); ++i)
      if (required_[i] == key) return static_cast<int>(i);
    return -1;
  }
  const std::vector<std::string_view>& fields() const { return required_; }

 private:
  std::vector<std::string_view> required_;
};

// Cuts a table file into chunks of whole records. The file is read in blocks and a small
// scanner (string and nesting state) finds the record boundaries; each chunk becomes a JSON array
// "[rec, rec, ...]" of about LoadOptions::chunk_bytes with simdjson's padding, parsed independently. Memory
// stays at a few chunks whatever the size of the table (sample_data.json of trainval is > 1 GB).
struct RawChunk {
  std::size_t index = 0;         // chunk number
  std::size_t first_record = 0;  // global index of its first record
  std::size_t records = 0;       // complete records in it
  std::size_t end_offset = 0;    // file offset just after its last record
  std::vector<char> json;        // '[' records ']' + padding
  std::size_t len = 0;           // JSON length without padding
};

class ChunkSource {
 public:
  static constexpr std::size_t kBlockBytes = 4u << 20;

  ChunkSource(const std::string& path, std::size_t chunk_bytes) : path_(path), chunk_bytes_(std::max<std::size_t>(chunk_bytes, 1)) {
    file_ = std::fopen(path.c_str(), "rb");
    BEVKD_CHECK(file_ != nullptr, "cannot open ", path, ": ", std::strerror(errno));
  }
  ~ChunkSource() { std::fclose(file_); }
  ChunkSource(const ChunkSource&) = delete;
  ChunkSource& operator=(const ChunkSource&) = delete;

  std::uint64_t file_size() const { return bevkd::file_size(path_); }

  // The next chunk, or false after the last one.
  bool next(RawChunk* out) {
    while (!done_) {
      if (scan_ == data_.size() && !eof_) {
        const std::size_t old = data_.size();
        data_.resize(old + kBlockBytes);
        const std::size_t got = std::fread(data_.data() + old, 1, kBlockBytes, file_);
        data_.resize(old + got);
        BEVKD_CHECK(!std::ferror(file_), "cannot read ", path_, ": ", std::strerror(errno));
        eof_ = got < kBlockBytes;
      }
      scan();
      if (finished_ || last_end_ - chunk_start_ >= chunk_bytes_) {
        const bool made = make_chunk(out);
        data_.erase(0, last_end_);
        consumed_ += last_end_;
        scan_ -= last_end_;
        chunk_start_ = last_end_ = 0;
        if (finished_) done_ = true;
        if (made) return true;
        continue;
      }
      if (eof_ && scan_ == data_.size()) {
        BEVKD_CHECK(started_, path_, ": expected a JSON array of records, found an empty file");
        BEVKD_FAIL(path_, ": not valid JSON (the file ends before the closing ']' of the record array)");
      }
    }
    return false;
  }

 private:
  static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

  void scan() {
    // Bytes that change the scanner's state outside strings.
    static const std::array<bool, 256> kSpecial = [] {
      std::array<bool, 256> t{};
      for (unsigned char c : {'"', '{', '}', '[', ']'}) t[c] = true;
      return t;
    }();
    const char* d = data_.data();
    const std::size_t n = data_.size();
    std::size_t i = scan_;
    while (i < n && !started_) {
      const char c = d[i++];
      if (c == '[') {
        started_ = true;
        chunk_start_ = last_end_ = i;
      } else if (!is_space(c)) {
        BEVKD_FAIL(path_, ": expected a JSON array of records, found '", c, "'");
      }
    }
    while (i < n && !finished_) {
      if (in_string_) {
        if (escape_) {
          escape_ = false;
          ++i;
          continue;
        }
        // Jump to the next quote or backslash (memchr is vectorised).
        const char* q = static_cast<const char*>(std::memchr(d + i, '"', n - i));
        const char* b = static_cast<const char*>(std::memchr(d + i, '\\', (q ? q : d + n) - (d + i)));
        if (b) {
          escape_ = true;
          i = static_cast<std::size_t>(b - d) + 1;
        } else if (q) {
          in_string_ = false;
          i = static_cast<std::size_t>(q - d) + 1;
        } else {
          i = n;
        }
        continue;
      }
      while (i < n && !kSpecial[static_cast<unsigned char>(d[i])]) ++i;
      if (i == n) break;
      const char c = d[i++];
      if (c == '"') {
        in_string_ = true;
      } else if (c == '{' || c == '[') {
        ++depth_;
      } else if (depth_ == 0) {
        BEVKD_CHECK(c == ']', path_, ": unbalanced '}' in the record array");
        finished_ = true;
        for (std::size_t k = last_end_; k + 1 < i; ++k)  // only separators after the last record
          BEVKD_CHECK(is_space(d[k]) || d[k] == ',', path_, " record ", records_before_ + pending_,
                      ": expected a JSON object");
      } else if (--depth_ == 0) {
        last_end_ = i;
        ++pending_;
        if (last_end_ - chunk_start_ >= chunk_bytes_) break;  // a full chunk
      }
    }
    scan_ = i;
  }

  bool make_chunk(RawChunk* out) {
    std::size_t begin = chunk_start_;
    while (begin < last_end_ && (is_space(data_[begin]) || data_[begin] == ',')) ++begin;
    if (begin >= last_end_) return false;
    out->index = chunks_++;
    out->first_record = records_before_;
    out->records = pending_;
    out->end_offset = consumed_ + last_end_;
    out->len = last_end_ - begin + 2;
    out->json.resize(out->len + simdjson::SIMDJSON_PADDING);
    out->json[0] = '[';
    std::memcpy(out->json.data() + 1, data_.data() + begin, last_end_ - begin);
    out->json[out->len - 1] = ']';
    std::memset(out->json.data() + out->len, 0, simdjson::SIMDJSON_PADDING);
    records_before_ += pending_;
    pending_ = 0;
    return true;
  }

  std::string path_;
  std::size_t chunk_bytes_;
  std::FILE* file_ = nullptr;
  std::string data_;
  std::size_t scan_ = 0, chunk_start_ = 0, last_end_ = 0, consumed_ = 0;
  std::size_t records_before_ = 0, pending_ = 0, chunks_ = 0;
  bool eof_ = false, done_ = false, started_ = false, finished_ = false, in_string_ = false, escape_ = false;
  int depth_ = 0;
};

// What one chunk of a table parses into; appended to the tables in chunk order.
template <typename Record>
struct Part {
  std::size_t first_record = 0;
  std::vector<Record> records;
  TokenColumn tokens;
  std::array<TokenColumn, 2> deferred;  // raw tokens of self / forward references, one per record
  std::string strings;                  // sample_data.filename, concatenated
  std::vector<std::uint64_t> string_ends;
  std::vector<std::uint32_t> lists;     // sample_annotation.attribute_tokens, resolved
  std::vector<std::string> formats;     // sample_data.fileformat, chunk-local ids
  std::uint32_t hint = 0;               // last resolved sample (consecutive records share it)
};

}  // namespace

// ---- the loader -------------------------------------------------------------------------------

class TablesLoader {
 public:
  TablesLoader(NuScenes& db, const LoadOptions& opts) : db_(db), opts_(opts) {}

  void run();

 private:
  // Loads <table>.json: chunks are parsed on worker threads (handle(k, value, where, record,
  // part) for every field k of `fields`; every record needs "token" and the non-optional
  // fields) and appended to `out` and the table's TokenColumn in chunk order by this thread,
  // then merge(part) appends the table-specific extras. The token index is built (duplicates
  // rejected) when the table is complete.
  template <typename Record, typename Handler, typename Merge>
  void load_table(Table t, const FieldSet& fields, bool (*optional)(int), std::vector<Record>& out, Handler handle,
                  Merge merge);
  std::uint32_t ref(Table target, std::string_view token, const Where& w, std::string_view field,
                    bool allow_empty = false) const;
  // ref() that first tries record `hint` of `target` (tables are often in matching order:
  // ego_pose follows sample_data, consecutive annotations share a sample), which saves the
  // cache misses of a hash lookup.
  std::uint32_t ref_near(Table target, std::string_view token, std::uint32_t hint, const Where& w,
                         std::string_view field) const {
    const TokenColumn& col = db_.tokens_[static_cast<int>(target)];
    if (hint < col.size() && col[hint] == token && !token.empty()) return hint;
    return ref(target, token, w, field);
  }
  // Resolves tokens collected in `raw` (one per record of `t`) into `target` indices; record i
  // is first tried against record i + hint_offset of the target.
  template <typename Record>
  void resolve(Table t, const TokenColumn& raw, Table target, std::string_view field, bool allow_empty,
               std::vector<Record>& out, std::uint32_t Record::*member, int hint_offset = 0);

  void load_category();
  void load_attribute();
  void load_visibility();
  void load_sensor();
  void load_calibrated_sensor();
  void load_ego_pose();
  void load_log();
  void load_map();
  void load_scene();
  void load_sample();
  void load_sample_data();
  void load_instance();
  void load_sample_annotation();
  void derive();

  NuScenes& db_;
  LoadOptions opts_;
  // Raw tokens of references resolved after their target is complete: the table being
  // loaded (prev/next), scene -> first/last sample, instance -> first/last annotation.
  std::array<TokenColumn, 2> deferred_, scene_samples_, instance_anns_;
};

namespace {
struct NoMerge {
  template <typename P>
  void operator()(P&) const {}
};

void append_column(TokenColumn& dst, const TokenColumn& src) {
  for (std::uint32_t i = 0; i < src.size(); ++i) dst.add(src[i]);
}
}  // namespace

template <typename Record, typename Handler, typename Merge>
void TablesLoader::load_table(Table t, const FieldSet& fields, bool (*optional)(int), std::vector<Record>& out,
                              Handler handle, Merge merge) {
  const std::string path = db_.table_path(t);
  TokenColumn& col = db_.tokens_[static_cast<int>(t)];
  deferred_ = {};
  ChunkSource source(path, opts_.chunk_bytes);
  const double file_bytes = static_cast<double>(source.file_size());
  const std::size_t nf = fields.fields().size();

  // Parses one chunk (thread-safe: reads only tables that are complete).
  auto parse = [&](RawChunk& chunk, od::parser& parser) {
    Part<Record> part;
    part.first_record = chunk.first_record;
    part.records.reserve(chunk.records);
    od::document doc;
    auto err = parser.iterate(chunk.json.data(), chunk.len, chunk.json.size()).get(doc);
    od::array arr;
    if (!err) err = doc.get_array().get(arr);
    BEVKD_CHECK(!err, path, " near record ", chunk.first_record, ": not valid JSON (", simdjson::error_message(err), ")");
    std::vector<char> seen(nf);
    std::size_t record = chunk.first_record;
    for (auto elem : arr) {
      Where w{&path, record, {}};
      od::object obj;
      err = elem.get_object().get(obj);
      BEVKD_CHECK(!err, w.str(), ": expected a JSON object (", simdjson::error_message(err), ")");
      Record& r = part.records.emplace_back();
      std::fill(seen.begin(), seen.end(), 0);
      bool has_token = false;
      for (auto field : obj) {
        std::string_view key;
        od::value v;
        BEVKD_CHECK(field.unescaped_key().get(key) == simdjson::SUCCESS && field.value().get(v) == simdjson::SUCCESS,
                    w.str(), ": malformed JSON");
        if (key == "token") {
          BEVKD_CHECK(!has_token, w.str(), ": two \"token\" fields");
          w.token = part.tokens[part.tokens.add(get_string(v, w, "token"))];
          has_token = true;
          continue;
        }
        const int k = fields.index(key);
        if (k < 0) continue;
        seen[k] = 1;
        handle(k, v, w, r, part);
      }
      BEVKD_CHECK(has_token, w.str(), ": missing field \"token\"");
      for (std::size_t k = 0; k < nf; ++k)
        BEVKD_CHECK(seen[k] || (optional && optional(static_cast<int>(k))), w.str(), ": missing field \"",
                    fields.fields()[k], "\"");
      ++record;
    }
    return part;
  };

  // Appends one parsed chunk, in chunk order.
  bool reserved = false;
  auto append = [&](Part<Record>& part, const RawChunk& info) {
    if (!reserved && info.end_offset > 0 && part.records.size() >= 64) {
      // Reserve for the whole table from the density of the first chunk.
      const double scale = 1.05 * file_bytes / static_cast<double>(info.end_offset);
      const auto n = static_cast<std::size_t>(static_cast<double>(part.records.size()) * scale);
      out.reserve(n);
      col.reserve(n, static_cast<std::size_t>(static_cast<double>(part.tokens.char_count()) * scale));
      reserved = true;
    }
    out.insert(out.end(), std::make_move_iterator(part.records.begin()), std::make_move_iterator(part.records.end()));
    append_column(col, part.tokens);
    for (int d = 0; d < 2; ++d) append_column(deferred_[d], part.deferred[d]);
    merge(part);
  };

  // Workers parse; this thread reads, cuts chunks and appends them.
  // Default: the pipeline pays off only with spare cores (on 2 shared cores it measured slower).
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  const int total = opts_.threads > 0 ? opts_.threads : (hw > 2 ? hw : 1);
  const int threads = std::min(total - 1, 8);
  if (threads < 1 || file_bytes < 2.0 * static_cast<double>(opts_.chunk_bytes)) {
    od::parser parser;
    RawChunk chunk;
    while (source.next(&chunk)) {
      Part<Record> part = parse(chunk, parser);
      append(part, chunk);
    }
  } else {
    // This thread reads and cuts chunks in order; TBB workers parse them; parsed chunks come back
    // in order through the bounded prefetch queue (base/prefetch_queue.h) and are appended here.
    struct Parsed {
      Part<Record> part;
      RawChunk info;  // without its JSON bytes
    };
    PrefetchQueue<Parsed> queue(static_cast<std::size_t>(2 * threads));
    tbb::task_arena arena(threads, 0);
    tbb::task_group group;
    tbb::enumerable_thread_specific<od::parser> parsers;
    std::exception_ptr failure;
    try {
      while (true) {
        auto chunk = std::make_shared<RawChunk>();
        if (!source.next(chunk.get())) break;
        std::optional<typename PrefetchQueue<Parsed>::Ticket> ticket;
        while (!(ticket = queue.try_reserve())) {  // full: append the oldest chunk first
          auto done = queue.pop();
          append(done->part, done->info);
        }
        arena.execute([&, chunk, slot = *ticket] {
          group.run([&, chunk, slot] {
            try {
              Parsed p;
              p.part = parse(*chunk, parsers.local());
              chunk->json = std::vector<char>();
              p.info = std::move(*chunk);
              queue.put(slot, std::move(p));
            } catch (...) {
              queue.put_error(slot, std::current_exception());
            }
          });
        });
      }
      queue.close();
      while (auto done = queue.pop()) append(done->part, done->info);
    } catch (...) {
      failure = std::current_exception();
    }
    arena.execute([&] { group.wait(); });
    if (failure) std::rethrow_exception(failure);
  }
  std::uint32_t first = kNone;
  const std::uint32_t dup = col.build_index(&first);
  BEVKD_CHECK(dup == kNone, path, ": records ", first, " and ", dup, " have the same token \"", col[dup], "\"");
}

template <typename Record>
void TablesLoader::resolve(Table t, const TokenColumn& raw, Table target, std::string_view field, bool allow_empty,
                           std::vector<Record>& out, std::uint32_t Record::*member, int hint_offset) {
  const std::string path = db_.table_path(t);
  const TokenColumn& target_col = db_.tokens_[static_cast<int>(target)];
  for (std::uint32_t i = 0; i < raw.size(); ++i) {
    const std::string_view token = raw[i];
    const std::uint32_t hint = static_cast<std::uint32_t>(static_cast<std::int64_t>(i) + hint_offset);
    if (!token.empty() && hint < target_col.size() && target_col[hint] == token) {
      out[i].*member = hint;
      continue;
    }
    const Where w{&path, i, db_.tokens(t)[i]};
    out[i].*member = ref(target, token, w, field, allow_empty);
  }
}

std::uint32_t NuScenes::at(Table t, std::string_view token) const {
  const std::uint32_t i = find(t, token);
  BEVKD_CHECK(i != kNone, "token \"", token, "\" is not in ", table_name(t), ".json (", version_, ")");
  return i;
}

std::uint32_t TablesLoader::ref(Table target, std::string_view token, const Where& w, std::string_view field,
                                bool allow_empty) const {
  if (token.empty()) {
    BEVKD_CHECK(allow_empty, w.str(), ": field \"", field, "\" is empty (expected a ", table_name(target),
                " token)");
    return kNone;
  }
  const std::uint32_t i = db_.tokens_[static_cast<int>(target)].find(token);
  BEVKD_CHECK(i != kNone, w.str(), ": field \"", field, "\" refers to ", table_name(target), " token \"", token,
              "\" which is not in ", table_name(target), ".json");
  return i;
}

void TablesLoader::load_category() {
  static const FieldSet kFields{"name", "description", "index"};
  load_table(
      Table::kCategory, kFields, [](int k) { return k == 2; }, db_.category_,
      [](int k, od::value v, const Where& w, Category& r, Part<Category>&) {
        if (k == 0) r.name = get_string(v, w, "name");
        if (k == 1) r.description = get_string(v, w, "description");
        if (k == 2) r.index = get_int_as<int>(v, w, "index", "int32");
      },
      NoMerge{});
}

void TablesLoader::load_attribute() {
  static const FieldSet kFields{"name", "description"};
  load_table(
      Table::kAttribute, kFields, nullptr, db_.attribute_,
      [](int k, od::value v, const Where& w, Attribute& r, Part<Attribute>&) {
        if (k == 0) r.name = get_string(v, w, "name");
        if (k == 1) r.description = get_string(v, w, "description");
      },
      NoMerge{});
}

void TablesLoader::load_visibility() {
  static const FieldSet kFields{"level", "description"};
  load_table(
      Table::kVisibility, kFields, nullptr, db_.visibility_,
      [](int k, od::value v, const Where& w, Visibility& r, Part<Visibility>&) {
        if (k == 0) r.level = get_string(v, w, "level");
        if (k == 1) r.description = get_string(v, w, "description");
      },
      NoMerge{});
}

void TablesLoader::load_sensor() {
  static const FieldSet kFields{"channel", "modality"};
  load_table(
      Table::kSensor, kFields, nullptr, db_.sensor_,
      [](int k, od::value v, const Where& w, Sensor& r, Part<Sensor>&) {
        if (k == 0) r.channel = get_string(v, w, "channel");
        if (k == 1) r.modality = get_string(v, w, "modality");
      },
      NoMerge{});
}

void TablesLoader::load_calibrated_sensor() {
  static const FieldSet kFields{"sensor_token", "translation", "rotation", "camera_intrinsic"};
  load_table(
      Table::kCalibratedSensor, kFields, nullptr, db_.calibrated_sensor_,
      [this](int k, od::value v, const Where& w, CalibratedSensor& r, Part<CalibratedSensor>&) {
        if (k == 0) r.sensor = ref(Table::kSensor, get_string(v, w, "sensor_token"), w, "sensor_token");
        if (k == 1) get_numbers(v, w, "translation", r.translation.data(), 3);
        if (k == 2) r.rotation = get_quaternion(v, w, "rotation");
        if (k == 3) {
          od::array rows;
          if (v.get_array().get(rows) != simdjson::SUCCESS) type_error(w, "camera_intrinsic", "[] or a 3x3 array", v);
          std::size_t row = 0;
          for (auto elem : rows) {
            od::value rv;
            BEVKD_CHECK(elem.get(rv) == simdjson::SUCCESS, w.str(), ": malformed JSON in field \"camera_intrinsic\"");
            BEVKD_CHECK(row < 3, w.str(), ": field \"camera_intrinsic\" has more than 3 rows (expected [] or 3x3)");
            get_numbers(rv, w, cat("camera_intrinsic[", row, "]"), r.camera_intrinsic.data() + 3 * row, 3);
            ++row;
          }
          BEVKD_CHECK(row == 0 || row == 3, w.str(), ": field \"camera_intrinsic\" has ", row,
                      " rows (expected [] or 3x3)");
          r.has_intrinsic = row == 3;
        }
      },
      NoMerge{});
}

void TablesLoader::load_ego_pose() {
  static const FieldSet kFields{"timestamp", "translation", "rotation"};
  load_table(
      Table::kEgoPose, kFields, nullptr, db_.ego_pose_,
      [](int k, od::value v, const Where& w, EgoPose& r, Part<EgoPose>&) {
        if (k == 0) r.timestamp = get_int(v, w, "timestamp");
        if (k == 1) get_numbers(v, w, "translation", r.translation.data(), 3);
        if (k == 2) r.rotation = get_quaternion(v, w, "rotation");
      },
      NoMerge{});
}

void TablesLoader::load_log() {
  static const FieldSet kFields{"logfile", "vehicle", "date_captured", "location"};
  load_table(
      Table::kLog, kFields, nullptr, db_.log_,
      [](int k, od::value v, const Where& w, Log& r, Part<Log>&) {
        if (k == 0) r.logfile = get_string(v, w, "logfile");
        if (k == 1) r.vehicle = get_string(v, w, "vehicle");
        if (k == 2) r.date_captured = get_string(v, w, "date_captured");
        if (k == 3) r.location = get_string(v, w, "location");
      },
      NoMerge{});
}

void TablesLoader::load_map() {
  static const FieldSet kFields{"log_tokens", "category", "filename"};
  load_table(
      Table::kMap, kFields, nullptr, db_.map_,
      [](int k, od::value v, const Where& w, Map& r, Part<Map>&) {
        if (k == 0) {
          od::array arr;
          if (v.get_array().get(arr) != simdjson::SUCCESS) type_error(w, "log_tokens", "a list of log tokens", v);
          for (auto elem : arr) {
            od::value e;
            BEVKD_CHECK(elem.get(e) == simdjson::SUCCESS, w.str(), ": malformed JSON in field \"log_tokens\"");
            r.log_tokens.emplace_back(get_string(e, w, "log_tokens[]"));
          }
        }
        if (k == 1) r.category = get_string(v, w, "category");
        if (k == 2) r.filename = get_string(v, w, "filename");
      },
      NoMerge{});
}

void TablesLoader::load_scene() {
  static const FieldSet kFields{"name",        "description",        "log_token",
                                "nbr_samples", "first_sample_token", "last_sample_token"};
  load_table(
      Table::kScene, kFields, nullptr, db_.scene_,
      [this](int k, od::value v, const Where& w, Scene& r, Part<Scene>& part) {
        if (k == 0) r.name = get_string(v, w, "name");
        if (k == 1) r.description = get_string(v, w, "description");
        if (k == 2) r.log = ref(Table::kLog, get_string(v, w, "log_token"), w, "log_token");
        if (k == 3) r.nbr_samples = get_int_as<std::int32_t>(v, w, "nbr_samples", "int32");
        if (k == 4) part.deferred[0].add(get_string(v, w, "first_sample_token"));
        if (k == 5) part.deferred[1].add(get_string(v, w, "last_sample_token"));
      },
      NoMerge{});
  // Resolved when sample.json is loaded.
  scene_samples_ = std::move(deferred_);
}

void TablesLoader::load_sample() {
  static const FieldSet kFields{"timestamp", "scene_token", "prev", "next"};
  load_table(
      Table::kSample, kFields, nullptr, db_.sample_,
      [this](int k, od::value v, const Where& w, Sample& r, Part<Sample>& part) {
        if (k == 0) r.timestamp = get_int(v, w, "timestamp");
        if (k == 1) r.scene = ref(Table::kScene, get_string(v, w, "scene_token"), w, "scene_token");
        if (k == 2) part.deferred[0].add(get_string(v, w, "prev"));
        if (k == 3) part.deferred[1].add(get_string(v, w, "next"));
      },
      NoMerge{});
  resolve(Table::kSample, deferred_[0], Table::kSample, "prev", true, db_.sample_, &Sample::prev, -1);
  resolve(Table::kSample, deferred_[1], Table::kSample, "next", true, db_.sample_, &Sample::next, 1);
  resolve(Table::kScene, scene_samples_[0], Table::kSample, "first_sample_token", false, db_.scene_, &Scene::first_sample);
  resolve(Table::kScene, scene_samples_[1], Table::kSample, "last_sample_token", false, db_.scene_, &Scene::last_sample);
  scene_samples_ = {};
}

void TablesLoader::load_sample_data() {
  static const FieldSet kFields{"sample_token", "ego_pose_token", "calibrated_sensor_token",
                                "timestamp",    "fileformat",     "is_key_frame",
                                "height",       "width",          "filename",
                                "prev",         "next"};
  db_.filename_offsets_.assign(1, 0);
  db_.filenames_.clear();
  load_table(
      Table::kSampleData, kFields, nullptr, db_.sample_data_,
      [this](int k, od::value v, const Where& w, SampleData& r, Part<SampleData>& part) {
        switch (k) {
          case 0:
            r.sample = part.hint = ref_near(Table::kSample, get_string(v, w, "sample_token"), part.hint, w, "sample_token");
            break;
          case 1:
            r.ego_pose = ref_near(Table::kEgoPose, get_string(v, w, "ego_pose_token"), static_cast<std::uint32_t>(w.record),
                                  w, "ego_pose_token");
            break;
          case 2:
            r.calibrated_sensor = ref(Table::kCalibratedSensor, get_string(v, w, "calibrated_sensor_token"), w,
                                      "calibrated_sensor_token");
            break;
          case 3: r.timestamp = get_int(v, w, "timestamp"); break;
          case 4: {
            const std::string_view ff = get_string(v, w, "fileformat");
            std::size_t i = 0;
            while (i < part.formats.size() && part.formats[i] != ff) ++i;
            if (i == part.formats.size()) {
              BEVKD_CHECK(part.formats.size() < 255, w.str(), ": more than 255 distinct fileformats");
              part.formats.emplace_back(ff);
            }
            r.fileformat = static_cast<std::uint8_t>(i);
            break;
          }
          case 5: r.is_key_frame = get_bool(v, w, "is_key_frame"); break;
          case 6: r.height = get_int_as<std::int32_t>(v, w, "height", "int32"); break;
          case 7: r.width = get_int_as<std::int32_t>(v, w, "width", "int32"); break;
          case 8:
            BEVKD_CHECK(part.string_ends.size() + part.first_record == w.record, w.str(), ": two \"filename\" fields");
            part.strings.append(get_string(v, w, "filename"));
            part.string_ends.push_back(part.strings.size());
            break;
          case 9: part.deferred[0].add(get_string(v, w, "prev")); break;
          case 10: part.deferred[1].add(get_string(v, w, "next")); break;
          default: break;
        }
      },
      [this](Part<SampleData>& part) {
        // File names into the arena; chunk-local fileformat ids to global ones.
        const std::uint64_t base = db_.filenames_.size();
        db_.filenames_.append(part.strings);
        for (std::uint64_t e : part.string_ends) db_.filename_offsets_.push_back(base + e);
        std::uint8_t remap[256];
        for (std::size_t i = 0; i < part.formats.size(); ++i) {
          auto& formats = db_.fileformats_;
          std::size_t g = 0;
          while (g < formats.size() && formats[g] != part.formats[i]) ++g;
          if (g == formats.size()) {
            BEVKD_CHECK(formats.size() < 255, db_.table_path(Table::kSampleData), ": more than 255 distinct fileformats");
            formats.push_back(part.formats[i]);
          }
          remap[i] = static_cast<std::uint8_t>(g);
        }
        const std::size_t first = db_.sample_data_.size() - part.records.size();
        for (std::size_t i = first; i < db_.sample_data_.size(); ++i)
          db_.sample_data_[i].fileformat = remap[db_.sample_data_[i].fileformat];
      });
  resolve(Table::kSampleData, deferred_[0], Table::kSampleData, "prev", true, db_.sample_data_, &SampleData::prev, -1);
  resolve(Table::kSampleData, deferred_[1], Table::kSampleData, "next", true, db_.sample_data_, &SampleData::next, 1);
  deferred_ = {};
}

void TablesLoader::load_instance() {
  static const FieldSet kFields{"category_token", "nbr_annotations", "first_annotation_token",
                                "last_annotation_token"};
  load_table(
      Table::kInstance, kFields, nullptr, db_.instance_,
      [this](int k, od::value v, const Where& w, Instance& r, Part<Instance>& part) {
        if (k == 0) r.category = ref(Table::kCategory, get_string(v, w, "category_token"), w, "category_token");
        if (k == 1) r.nbr_annotations = get_int_as<std::int32_t>(v, w, "nbr_annotations", "int32");
        if (k == 2) part.deferred[0].add(get_string(v, w, "first_annotation_token"));
        if (k == 3) part.deferred[1].add(get_string(v, w, "last_annotation_token"));
      },
      NoMerge{});
  instance_anns_ = std::move(deferred_);
}

void TablesLoader::load_sample_annotation() {
  static const FieldSet kFields{"sample_token", "instance_token", "attribute_tokens", "visibility_token",
                                "translation",  "size",           "rotation",         "prev",
                                "next",         "num_lidar_pts",  "num_radar_pts"};
  db_.annotation_attributes_.clear();
  load_table(
      Table::kSampleAnnotation, kFields, nullptr, db_.sample_annotation_,
      [this](int k, od::value v, const Where& w, SampleAnnotation& r, Part<SampleAnnotation>& part) {
        switch (k) {
          case 0:
            r.sample = part.hint = ref_near(Table::kSample, get_string(v, w, "sample_token"), part.hint, w, "sample_token");
            break;
          case 1: r.instance = ref(Table::kInstance, get_string(v, w, "instance_token"), w, "instance_token"); break;
          case 2: {
            od::array arr;
            if (v.get_array().get(arr) != simdjson::SUCCESS)
              type_error(w, "attribute_tokens", "a list of attribute tokens", v);
            r.attributes_begin = static_cast<std::uint32_t>(part.lists.size());  // chunk-local until merged
            r.attributes_count = 0;
            for (auto elem : arr) {
              od::value e;
              BEVKD_CHECK(elem.get(e) == simdjson::SUCCESS, w.str(), ": malformed JSON in field \"attribute_tokens\"");
              part.lists.push_back(ref(Table::kAttribute, get_string(e, w, "attribute_tokens[]"), w, "attribute_tokens"));
              ++r.attributes_count;
            }
            break;
          }
          case 3:
            r.visibility = ref(Table::kVisibility, get_string(v, w, "visibility_token"), w, "visibility_token", true);
            break;
          case 4: get_numbers(v, w, "translation", r.translation.data(), 3); break;
          case 5: get_numbers(v, w, "size", r.size.data(), 3); break;
          case 6: r.rotation = get_quaternion(v, w, "rotation"); break;
          case 7: part.deferred[0].add(get_string(v, w, "prev")); break;
          case 8: part.deferred[1].add(get_string(v, w, "next")); break;
          case 9: r.num_lidar_pts = get_int_as<std::int32_t>(v, w, "num_lidar_pts", "int32"); break;
          case 10: r.num_radar_pts = get_int_as<std::int32_t>(v, w, "num_radar_pts", "int32"); break;
          default: break;
        }
      },
      [this](Part<SampleAnnotation>& part) {
        const auto base = static_cast<std::uint32_t>(db_.annotation_attributes_.size());
        db_.annotation_attributes_.insert(db_.annotation_attributes_.end(), part.lists.begin(), part.lists.end());
        const std::size_t first = db_.sample_annotation_.size() - part.records.size();
        for (std::size_t i = first; i < db_.sample_annotation_.size(); ++i) db_.sample_annotation_[i].attributes_begin += base;
      });
  resolve(Table::kSampleAnnotation, deferred_[0], Table::kSampleAnnotation, "prev", true, db_.sample_annotation_,
          &SampleAnnotation::prev);
  resolve(Table::kSampleAnnotation, deferred_[1], Table::kSampleAnnotation, "next", true, db_.sample_annotation_,
          &SampleAnnotation::next);
  deferred_ = {};
  resolve(Table::kInstance, instance_anns_[0], Table::kSampleAnnotation, "first_annotation_token", false, db_.instance_,
          &Instance::first_annotation);
  resolve(Table::kInstance, instance_anns_[1], Table::kSampleAnnotation, "last_annotation_token", false, db_.instance_,
          &Instance::last_annotation);
  instance_anns_ = {};
}

void TablesLoader::derive() {
  NuScenes& d = db_;
  // Channels in sensor-table order.
  for (Sensor& s : d.sensor_) {
    int id = d.channel_id(s.channel);
    if (id < 0) {
      id = static_cast<int>(d.channels_.size());
      d.channels_.push_back(s.channel);
    }
    s.channel_id = static_cast<std::uint16_t>(id);
  }
  for (SampleData& sd : d.sample_data_)
    sd.channel_id = d.sensor_[d.calibrated_sensor_[sd.calibrated_sensor].sensor].channel_id;
  // sample.data[channel] for key frames (a later key frame of the same channel overwrites, as in
  // the devkit's dict assignment).
  const std::size_t nc = d.channels_.size();
  d.key_frames_.assign(d.sample_.size() * nc, kNone);
  for (std::uint32_t i = 0; i < d.sample_data_.size(); ++i) {
    const SampleData& sd = d.sample_data_[i];
    if (sd.is_key_frame) d.key_frames_[sd.sample * nc + sd.channel_id] = i;
  }
  // sample.anns in sample_annotation table order (a stable counting sort by sample).
  d.anns_offsets_.assign(d.sample_.size() + 1, 0);
  for (const SampleAnnotation& a : d.sample_annotation_) ++d.anns_offsets_[a.sample + 1];
  for (std::size_t i = 0; i < d.sample_.size(); ++i) d.anns_offsets_[i + 1] += d.anns_offsets_[i];
  d.anns_.resize(d.sample_annotation_.size());
  std::vector<std::uint32_t> fill(d.anns_offsets_.begin(), d.anns_offsets_.end() - 1);
  for (std::uint32_t i = 0; i < d.sample_annotation_.size(); ++i) d.anns_[fill[d.sample_annotation_[i].sample]++] = i;
  // log.map_token.
  for (std::uint32_t m = 0; m < d.map_.size(); ++m)
    for (const std::string& lt : d.map_[m].log_tokens) {
      const std::uint32_t l = d.find(Table::kLog, lt);
      if (l != kNone) d.log_[l].map = m;
    }
}

void TablesLoader::run() {
  ProgressOptions popts;
  popts.unit = "tables";
  popts.enabled = opts_.show_progress;
  Progress progress("load nuScenes tables " + db_.version_, kNumTables, popts);
  // Fail fast on a missing file before parsing gigabytes.
  for (int t = 0; t < kNumTables; ++t) {
    const std::string p = db_.table_path(static_cast<Table>(t));
    BEVKD_CHECK(path_exists(p), "nuScenes table ", p,
                " is missing (a dataset needs all 13 tables: category, attribute, visibility, instance, sensor, "
                "calibrated_sensor, ego_pose, log, scene, sample, sample_data, sample_annotation, map)");
  }
  // Dependency order: every foreign key points to a table already loaded, except the forward
  // references of scene and instance (resolved right after their target is loaded) and the
  // prev/next chains (resolved when their own table is complete).
  using Loader = void (TablesLoader::*)();
  static constexpr Loader kOrder[kNumTables] = {
      &TablesLoader::load_category,    &TablesLoader::load_attribute,         &TablesLoader::load_visibility,
      &TablesLoader::load_sensor,      &TablesLoader::load_calibrated_sensor, &TablesLoader::load_ego_pose,
      &TablesLoader::load_log,         &TablesLoader::load_map,               &TablesLoader::load_scene,
      &TablesLoader::load_sample,      &TablesLoader::load_sample_data,       &TablesLoader::load_instance,
      &TablesLoader::load_sample_annotation};
  for (Loader load : kOrder) {
    (this->*load)();
    progress.advance();
  }
  derive();
  progress.finish();
}

// ---- NuScenes ------------------------------------------------------------------------------------

NuScenes NuScenes::load(const std::string& dataroot, const std::string& version, const LoadOptions& opts) {
  NuScenes db;
  db.dataroot_ = dataroot;
  db.version_ = version;
  BEVKD_CHECK(path_exists(dataroot + "/" + version), "nuScenes version directory ", dataroot, "/", version,
              " does not exist");
  TablesLoader(db, opts).run();
  return db;
}

std::string NuScenes::table_path(Table t) const { return cat(dataroot_, "/", version_, "/", table_name(t), ".json"); }

std::string_view NuScenes::category_name(std::uint32_t ann) const {
  return category_[instance_[sample_annotation_[ann].instance].category].name;
}

Span<std::uint32_t> NuScenes::attributes_of(std::uint32_t ann) const {
  const SampleAnnotation& a = sample_annotation_[ann];
  return {annotation_attributes_.data() + a.attributes_begin, a.attributes_count};
}

Span<std::uint32_t> NuScenes::sample_anns(std::uint32_t sample) const {
  return {anns_.data() + anns_offsets_[sample], static_cast<std::size_t>(anns_offsets_[sample + 1] - anns_offsets_[sample])};
}

int NuScenes::channel_id(std::string_view channel) const {
  for (std::size_t i = 0; i < channels_.size(); ++i)
    if (channels_[i] == channel) return static_cast<int>(i);
  return -1;
}

std::uint32_t NuScenes::key_frame(std::uint32_t sample, std::string_view channel) const {
  const int c = channel_id(channel);
  if (c < 0) return kNone;
  return key_frames_[static_cast<std::size_t>(sample) * channels_.size() + static_cast<std::size_t>(c)];
}

std::string_view NuScenes::sensor_modality(std::uint32_t sd) const {
  return sensor_[calibrated_sensor_[sample_data_[sd].calibrated_sensor].sensor].modality;
}

std::vector<std::uint32_t> NuScenes::samples_of_scenes(const std::vector<std::string>& scene_names) const {
  const std::unordered_set<std::string> wanted(scene_names.begin(), scene_names.end());
  std::vector<char> in_split(scene_.size());
  for (std::size_t i = 0; i < scene_.size(); ++i) in_split[i] = wanted.count(scene_[i].name) > 0;
  std::vector<std::uint32_t> out;
  for (std::uint32_t s = 0; s < sample_.size(); ++s)
    if (in_split[sample_[s].scene]) out.push_back(s);
  return out;
}

std::vector<std::uint32_t> NuScenes::split_samples(const std::string& split) const {
  return samples_of_scenes(split_scene_names(split, dataroot_, version_));
}

Vec3 NuScenes::box_velocity(std::uint32_t ann, double max_time_diff) const {
  // spec/nuscenes.md §(c), the devkit's NuScenes.box_velocity.
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const SampleAnnotation& cur = sample_annotation_[ann];
  const bool has_prev = cur.prev != kNone, has_next = cur.next != kNone;
  if (!has_prev && !has_next) return {kNaN, kNaN, kNaN};
  const SampleAnnotation& first = has_prev ? sample_annotation_[cur.prev] : cur;
  const SampleAnnotation& last = has_next ? sample_annotation_[cur.next] : cur;
  // Seconds first, then the difference (1e-6 * t as the devkit writes it).
  const double time_last = 1e-6 * static_cast<double>(sample_[last.sample].timestamp);
  const double time_first = 1e-6 * static_cast<double>(sample_[first.sample].timestamp);
  const double time_diff = time_last - time_first;
  if (has_prev && has_next) max_time_diff *= 2;
  if (time_diff > max_time_diff) return {kNaN, kNaN, kNaN};
  return {(last.translation[0] - first.translation[0]) / time_diff,
          (last.translation[1] - first.translation[1]) / time_diff,
          (last.translation[2] - first.translation[2]) / time_diff};
}

const EgoPose& NuScenes::lidar_key_pose(std::uint32_t sample) const {
  const std::uint32_t sd = key_frame(sample, kLidarChannel);
  BEVKD_CHECK(sd != kNone, version_, ": sample ", token(Table::kSample, sample), " has no ", kLidarChannel,
              " key frame");
  return ego_pose_[sample_data_[sd].ego_pose];
}

std::size_t NuScenes::memory_bytes() const {
  std::size_t b = 0;
  for (const TokenColumn& t : tokens_) b += t.memory_bytes();
  auto strs = [](const auto& v) {
    std::size_t s = 0;
    for (const auto& r : v) s += sizeof(r);
    return s;
  };
  b += strs(category_) + strs(attribute_) + strs(visibility_) + strs(sensor_) + strs(log_) + strs(scene_) +
       strs(map_);
  b += instance_.capacity() * sizeof(Instance) + calibrated_sensor_.capacity() * sizeof(CalibratedSensor) +
       ego_pose_.capacity() * sizeof(EgoPose) + sample_.capacity() * sizeof(Sample) +
       sample_data_.capacity() * sizeof(SampleData) + sample_annotation_.capacity() * sizeof(SampleAnnotation);
  b += filenames_.capacity() + filename_offsets_.capacity() * sizeof(std::uint64_t);
  b += (annotation_attributes_.capacity() + anns_offsets_.capacity() + anns_.capacity() + key_frames_.capacity()) *
       sizeof(std::uint32_t);
  return b;
}

std::string NuScenes::summary() const {
  std::ostringstream os;
  for (int t = 0; t < kNumTables; ++t) {
    if (t) os << ", ";
    os << table_name(static_cast<Table>(t)) << " " << tokens_[t].size();
  }
  os << "; " << static_cast<double>(memory_bytes()) / (1024.0 * 1024.0) << " MiB";
  return os.str();
}

}  // namespace bevkd::core::nusc
