// Shard arrays (storage/array.h) as LibTorch tensors.
#pragma once

#include <torch/types.h>

#include "storage/array.h"

namespace bevkd::train::data {

// The tensor dtype of a storage dtype (float16 -> kHalf: the same IEEE binary16 bits); throws
// bevkd::Error for strings and uint64.
torch::ScalarType torch_type(storage::DType t);

// A CPU tensor copy of `a`, same shape and dtype (a ragged field: [rows, ...row shape]).
torch::Tensor tensor_of(const storage::Array& a);

}  // namespace bevkd::train::data
