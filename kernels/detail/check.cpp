#include "kernels/detail/check.h"

#include <sstream>

namespace bevkd::kernels::detail {

namespace {

const char* dtype_name(torch::ScalarType s) {
  switch (s) {
    case torch::kFloat32:
      return "float32";
    case torch::kFloat64:
      return "float64";
    case torch::kFloat16:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kInt8:
      return "int8";
    case torch::kUInt8:
      return "uint8";
    case torch::kInt16:
      return "int16";
    case torch::kInt32:
      return "int32";
    case torch::kInt64:
      return "int64";
    case torch::kBool:
      return "bool";
    default:
      return c10::toString(s);
  }
}

}  // namespace

std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  std::ostringstream os;
  os << '[';
  for (int64_t d = 0; d < t.dim(); ++d) os << (d ? ", " : "") << t.size(d);
  os << "] " << dtype_name(t.scalar_type()) << " on " << t.device();
  return os.str();
}

void check_arg(bool ok, const char* op, const char* name, const char* expected, const torch::Tensor& t) {
  BEVKD_CHECK(ok, op, ": ", name, " must be ", expected, ", found ", describe(t));
}

bool is_float(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64;
}

bool is_integer(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kInt8:
    case torch::kInt16:
    case torch::kInt32:
    case torch::kInt64:
    case torch::kUInt8:
      return true;
    default:
      return false;
  }
}

void check_same_device(const char* op, const char* name_a, const torch::Tensor& a, const char* name_b,
                       const torch::Tensor& b) {
  BEVKD_CHECK(a.device() == b.device(), op, ": ", name_a, " is on ", a.device(), " but ", name_b, " is on ", b.device(),
              "; both must be on the same device");
}

void fail_no_cuda(const char* op, const torch::Tensor& t) {
  BEVKD_FAIL(op, ": got a tensor on ", t.device(),
             " but bevkd was built without CUDA kernels (configure with -DBEVKD_WITH_CUDA=ON)");
}

}  // namespace bevkd::kernels::detail
