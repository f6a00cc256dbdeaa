#include "train/data/array_tensor.h"

#include <cstring>
#include <memory>

#include "base/error.h"

namespace bevkd::train::data {

using storage::DType;

torch::ScalarType torch_type(DType t) {
  switch (t) {
    case DType::kUInt8: return torch::kByte;
    case DType::kInt8: return torch::kChar;
    case DType::kInt16: return torch::kShort;
    case DType::kInt32: return torch::kInt;
    case DType::kInt64: return torch::kLong;
    case DType::kFloat16: return torch::kHalf;
    case DType::kFloat32: return torch::kFloat;
    case DType::kFloat64: return torch::kDouble;
    default: break;
  }
  BEVKD_FAIL("shard dtype ", storage::dtype_name(t), " has no tensor type");
}

torch::Tensor tensor_of(const storage::Array& a) {
  auto t = torch::empty(a.shape(), torch::TensorOptions().dtype(torch_type(a.dtype())));
  if (a.nbytes() > 0) std::memcpy(t.data_ptr(), a.raw(), a.nbytes());
  return t;
}

torch::Tensor pooled_empty(const std::vector<std::int64_t>& shape, storage::DType dtype) {
  auto a = std::make_shared<storage::Array>(storage::Array::uninitialized(dtype, shape));
  void* data = a->raw();
  return torch::from_blob(
      data, shape, [a](void*) mutable { a.reset(); }, torch::TensorOptions().dtype(torch_type(dtype)));
}

}  // namespace bevkd::train::data
