#include "base/json_writer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>

#include "base/error.h"
#include "tests/support/temp_dir.h"
#include "base/fs.h"

namespace bevkd {
namespace {

TEST(JsonWriter, FloatsLikePythonRepr) {
  EXPECT_EQ(python_float_repr(0.5), "0.5");
  EXPECT_EQ(python_float_repr(2.0), "2.0");
  EXPECT_EQ(python_float_repr(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(python_float_repr(1e-4), "0.0001");
  EXPECT_EQ(python_float_repr(1e-5), "1e-05");
  EXPECT_EQ(python_float_repr(1.5e-7), "1.5e-07");
  EXPECT_EQ(python_float_repr(1e16), "1e+16");
  EXPECT_EQ(python_float_repr(1234567890123456.0), "1234567890123456.0");
  EXPECT_EQ(python_float_repr(-0.0), "-0.0");
  EXPECT_EQ(python_float_repr(std::nan("")), "NaN");
  EXPECT_EQ(python_float_repr(-INFINITY), "-Infinity");
}

TEST(JsonWriter, PythonLayouts) {
  JsonWriter w(JsonFormat::python(2));
  w.begin_object().key("a").begin_object().key("0.5").value(1.0).end_object();
  w.key("b").begin_array().value(1).value(std::nan("")).end_array().key("c").begin_array().end_array();
  w.key("d").value("x\"y").end_object();
  // json.dumps({"a": {"0.5": 1.0}, "b": [1, float("nan")], "c": [], "d": 'x"y'}, indent=2)
  EXPECT_EQ(w.str(), "{\n  \"a\": {\n    \"0.5\": 1.0\n  },\n  \"b\": [\n    1,\n    NaN\n  ],\n  \"c\": [],\n  \"d\": \"x\\\"y\"\n}");
  JsonWriter one;
  one.begin_object().key("a").begin_array().value(1.5).value(true).end_array().key("b").null().end_object();
  EXPECT_EQ(one.str(), "{\"a\": [1.5, true], \"b\": null}");
}

TEST(JsonWriter, NuscenesTablesFileKeepsTypesAndRoundTrips) {
  const std::string path = bevkd::testing::fresh_dir("json_writer_test") + "/t.json";
  {
    JsonWriter w(path, JsonFormat::nuscenes_tables());
    w.begin_array();
    const double v[3] = {1.0, -0.0, 1e-7};
    w.begin_object().field("token", "a\"b\\c\n").field("n", 3).field("big", std::int64_t{1532402927647951}).field("f", 2.0);
    w.field("v", v, 3).field("b", true).key("empty").begin_array().end_array().key("nested").begin_array();
    w.begin_array().value(0.1).end_array().end_array().end_object();
    w.begin_object().end_object();
    w.end_array();
    EXPECT_FALSE(path_exists(path)) << "only close() puts the file in place";
    w.close();
  }
  const std::string text = read_file(path);
  // The real tables' layout: indent 0, member arrays on one line, a final newline.
  EXPECT_EQ(text,
            "[\n{\n\"token\": \"a\\\"b\\\\c\\n\",\n\"n\": 3,\n\"big\": 1532402927647951,\n\"f\": 2.0,\n"
            "\"v\": [1.0, -0.0, 1e-07],\n\"b\": true,\n\"empty\": [],\n\"nested\": [[0.1]]\n},\n{}\n]\n");
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j[0]["token"], "a\"b\\c\n");
  EXPECT_EQ(j[0]["big"], 1532402927647951LL);
  EXPECT_TRUE(j[0]["f"].is_number_float());  // a float stays a float
  EXPECT_EQ(j[0]["nested"][0][0].get<double>(), 0.1);
}

TEST(JsonWriter, StrictFormatRefusesNonFiniteAndFailedWriterLeavesNoFile) {
  const std::string path = bevkd::testing::fresh_dir("json_writer_test") + "/bad.json";
  std::string msg;
  try {
    JsonWriter w(path, JsonFormat::nuscenes_tables());
    w.begin_array().value(std::numeric_limits<double>::quiet_NaN());
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find(path + ": cannot write the non-finite number NaN"), std::string::npos) << msg;
  EXPECT_FALSE(path_exists(path));
  EXPECT_FALSE(path_exists(path + ".tmp")) << "the unwound writer removes its temporary file";
}

TEST(JsonWriter, FloatsMatchPythonOnRandomValues) {
  const std::string py = BEVKD_PYTHON;
  if (std::system((py + " -c 'import sys' > /dev/null 2>&1").c_str()) != 0) GTEST_SKIP() << "no " << py;
  std::mt19937_64 rng(7);
  std::string in;
  std::vector<double> values;
  for (int i = 0; i < 2000; ++i) {
    double v;
    std::uint64_t bits = rng();
    std::memcpy(&v, &bits, sizeof v);
    if (!std::isfinite(v) || i % 2) v = std::ldexp(static_cast<double>(rng() % 100000000) - 5e7, static_cast<int>(rng() % 80) - 60);
    values.push_back(v);
    char hex[64];
    std::snprintf(hex, sizeof hex, "%a\n", v);
    in += hex;
  }
  const std::string dir = bevkd::testing::fresh_dir("json_writer_test");
  write_file_atomic(dir + "/repr_in.txt", in);
  const std::string cmd = py + " -c \"import sys; print('\\n'.join(repr(float.fromhex(l)) for l in open(sys.argv[1]).read().split()))\" " +
                          dir + "/repr_in.txt > " + dir + "/repr_out.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::istringstream out(read_file(dir + "/repr_out.txt"));
  std::string line;
  for (double v : values) {
    ASSERT_TRUE(std::getline(out, line));
    ASSERT_EQ(python_float_repr(v), line);
  }
}

}  // namespace
}  // namespace bevkd
