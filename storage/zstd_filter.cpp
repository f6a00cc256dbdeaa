#include "storage/zstd_filter.h"

#include <zstd.h>

namespace bevkd::storage {
namespace {

size_t zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[], size_t nbytes,
                   size_t* buf_size, void** buf) {
  if (flags & H5Z_FLAG_REVERSE) {
    const unsigned long long n = ZSTD_getFrameContentSize(*buf, nbytes);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN) return 0;
    void* out = H5allocate_memory(n > 0 ? n : 1, false);
    if (out == nullptr) return 0;
    const size_t r = ZSTD_decompress(out, n, *buf, nbytes);
    if (ZSTD_isError(r) || r != n) {
      H5free_memory(out);
      return 0;
    }
    H5free_memory(*buf);
    *buf = out;
    *buf_size = n;
    return n;
  }
  const int level = cd_nelmts > 0 ? static_cast<int>(cd_values[0]) : 3;
  const size_t bound = ZSTD_compressBound(nbytes);
  void* out = H5allocate_memory(bound, false);
  if (out == nullptr) return 0;
  const size_t r = ZSTD_compress(out, bound, *buf, nbytes, level);
  if (ZSTD_isError(r)) {
    H5free_memory(out);
    return 0;
  }
  H5free_memory(*buf);
  *buf = out;
  *buf_size = bound;
  return r;
}

const H5Z_class2_t kClass = {H5Z_CLASS_T_VERS, kZstdHdf5FilterId, 1, 1, "zstd", nullptr, nullptr, &zstd_filter};

}  // namespace

const H5Z_class2_t* zstd_hdf5_filter_class() { return &kClass; }

}  // namespace bevkd::storage
