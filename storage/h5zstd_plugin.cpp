// libbevkd_h5zstd.so: the zstd filter (32015) as an HDF5 dynamically loaded plugin, for stock
// HDF5 readers: HDF5_PLUGIN_PATH=<build>/hdf5-plugins h5dump shard.h5 (see storage/zstd_filter.h).
#include "storage/zstd_filter.h"

extern "C" {
H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }
const void* H5PLget_plugin_info(void) { return bevkd::storage::zstd_hdf5_filter_class(); }
}
