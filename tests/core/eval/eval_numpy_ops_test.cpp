// numpy-exact primitives of the evaluation: hand-worked edge cases, and bit-exact agreement with
// numpy itself on random inputs (run through ${BEVKD_PYTHON}, which has numpy).
#include "tests/support/expect_error.h"
#include "core/eval/numpy_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/json_writer.h"

namespace bevkd::core::eval {
namespace {

using V = std::vector<double>;

TEST(EvalNumpyOps, InterpHandCases) {
  // xp with a repeat at 1: x == 1 takes the value of the LAST xp equal to it.
  const V xp{0, 1, 1, 2}, fp{0, 10, 20, 30};
  const V got = np::interp({-1, 0, 0.5, 1, 1.5, 2, 3}, xp, fp);
  // left defaults to fp[0]; 0.5 interpolates 0..10; 1 -> fp[2]; 1.5 interpolates 20..30;
  // 2 is the last xp -> fp[3]; 3 > last -> right defaults to fp[last].
  EXPECT_EQ(got, (V{0, 0, 5, 20, 25, 30, 30}));
  const V lr = np::interp({-1, 3}, xp, fp, -7.0, 0.0);
  EXPECT_EQ(lr, (V{-7, 0}));
  // A single point: below -> left, equal -> fp, above -> right.
  EXPECT_EQ(np::interp({0.5, 1, 2}, {1}, {4}, std::nullopt, 0.0), (V{4, 4, 0}));
  // All-equal xp (all scores tied): anything at that x takes the last fp.
  EXPECT_EQ(np::interp({0.5}, {0.5, 0.5, 0.5}, {0.2, 0.15, 0.1}), (V{0.1}));
  // NaN x stays NaN.
  EXPECT_TRUE(std::isnan(np::interp({std::nan("")}, xp, fp)[0]));
  EXPECT_ERROR_WITH(np::interp({1}, {}, {}), "interp: xp is empty");
}

TEST(EvalNumpyOps, LinspaceIsNotKOver100) {
  const V r = np::linspace(0, 1, 101);
  ASSERT_EQ(r.size(), 101u);
  EXPECT_EQ(r[0], 0.0);
  EXPECT_EQ(r[100], 1.0);
  EXPECT_EQ(r[35], 35 * 0.01);
  // 0.35000000000000003, not 0.35 (numpy gives the same): decides whether rec == r_k in interp.
  EXPECT_NE(r[35], 0.35);
  EXPECT_EQ(r[57], 0.5700000000000001);
}

TEST(EvalNumpyOps, CummeanSkipsNans) {
  const double nan = std::nan("");
  EXPECT_EQ(np::cummean({nan, 2, nan, 4}), (V{0, 2, 2, 3}));  // before the first value: 0
  EXPECT_EQ(np::cummean({nan, nan}), (V{1, 1}));             // all NaN: 1
  EXPECT_EQ(np::cummean({1, 2, 3}), (V{1, 1.5, 2}));
}

TEST(EvalNumpyOps, PythonModAndRound) {
  EXPECT_DOUBLE_EQ(np::python_mod(-1.0, 3.0), 2.0);
  EXPECT_DOUBLE_EQ(np::python_mod(1.0, -3.0), -2.0);
  EXPECT_EQ(np::python_mod(-3.0, 3.0), 0.0);
  EXPECT_FALSE(std::signbit(np::python_mod(-3.0, 3.0)));
  EXPECT_EQ(np::python_round(2.5), 2);  // half to even
  EXPECT_EQ(np::python_round(3.5), 4);
  EXPECT_EQ(np::python_round(100 * 0.1), 10);
}

TEST(EvalNumpyOps, SumOrderMatters) {
  // numpy's pairwise order, not a left fold: with 8 partial sums the ones are added to each
  // other before they meet 1e16 and survive; a left fold loses each one (1e16 + 1 == 1e16).
  V a{1e16, 1, 1, 1, 1, 1, 1, 1, 1, -1e16};
  double fold = 0;
  for (double v : a) fold += v;
  EXPECT_NE(np::sum(a), fold);
  EXPECT_TRUE(std::isnan(np::mean(V{})));
  EXPECT_EQ(np::nanmean({1, std::nan(""), 3}), 2.0);
  EXPECT_TRUE(std::isnan(np::nanmean({std::nan("")})));
}

// Runs numpy on random inputs and compares bit for bit.
TEST(EvalNumpyOps, MatchesNumpyBitForBit) {
  const std::string py = BEVKD_PYTHON;
  if (std::system((py + " -c 'import numpy' > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << py << " has no numpy";
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> u(0, 1);
  struct Case {
    V x, xp, fp;
    bool right0;
  };
  std::vector<Case> cases;
  std::vector<V> sums;
  for (int t = 0; t < 300; ++t) {
    Case c;
    const int n = 1 + static_cast<int>(u(rng) * 40);
    double cur = u(rng) * 0.1;
    for (int i = 0; i < n; ++i) {
      if (u(rng) < 0.7) cur += u(rng) < 0.5 ? 0.01 * std::floor(u(rng) * 5) : u(rng) * 0.05;  // repeats and grid values
      c.xp.push_back(cur);
      c.fp.push_back(u(rng));
    }
    c.x = np::linspace(0, 1, 101);
    for (double v : c.xp) c.x.push_back(v);  // exact hits
    c.right0 = u(rng) < 0.5;
    cases.push_back(c);
    V s;
    const int m = 1 + static_cast<int>(u(rng) * 300);
    for (int i = 0; i < m; ++i) s.push_back((u(rng) - 0.5) * std::pow(10.0, std::floor(u(rng) * 20) - 3));
    sums.push_back(s);
  }
  auto line = [](const V& v) {
    std::string s;
    for (double d : v) s += python_float_repr(d) + " ";
    return s + "\n";
  };
  std::string in;
  for (const Case& c : cases) in += line(c.x) + line(c.xp) + line(c.fp) + (c.right0 ? "1\n" : "0\n");
  for (const V& s : sums) in += line(s);
  const std::string dir = std::string(BEVKD_BINARY_DIR) + "/tests/core";
  const std::string in_path = dir + "/numpy_ops_in.txt", out_path = dir + "/numpy_ops_out.txt",
                    script_path = dir + "/numpy_ops.py";
  write_file_atomic(in_path, in);
  write_file_atomic(script_path, R"(import sys, numpy as np
L = [list(map(float, l.split())) for l in open(sys.argv[1])]
out = []
n = 300
for t in range(n):
    x, xp, fp, r0 = L[4*t], L[4*t+1], L[4*t+2], L[4*t+3][0]
    y = np.interp(x, xp, fp, right=0) if r0 else np.interp(x, xp, fp)
    out.append(' '.join(repr(float(v)) for v in y))
for s in L[4*n:]:
    a = np.array(s)
    out.append(repr(float(np.sum(a))) + ' ' + repr(float(np.mean(a))))
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
)");
  ASSERT_EQ(std::system((py + " " + script_path + " " + in_path + " " + out_path).c_str()), 0);
  std::istringstream res(read_file(out_path));
  auto parse = [](const std::string& l) {
    V v;
    std::istringstream is(l);
    std::string tok;
    while (is >> tok) v.push_back(std::strtod(tok.c_str(), nullptr));
    return v;
  };
  std::string l;
  for (const Case& c : cases) {
    ASSERT_TRUE(std::getline(res, l));
    const V want = parse(l);
    const V got = np::interp(c.x, c.xp, c.fp, std::nullopt, c.right0 ? std::optional<double>(0.0) : std::nullopt);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "x = " << c.x[i];
  }
  for (const V& s : sums) {
    ASSERT_TRUE(std::getline(res, l));
    const V want = parse(l);
    ASSERT_EQ(want.size(), 2u);
    EXPECT_EQ(np::sum(s), want[0]) << s.size() << " values";
    EXPECT_EQ(np::mean(s), want[1]) << s.size() << " values";
  }
}

}  // namespace
}  // namespace bevkd::core::eval
